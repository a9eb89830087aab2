"""The active-learning loop, top to bottom: fit -> evaluate -> select -> label -> record -> checkpoint."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from al_bench import distributed
from al_bench.budget import draw_candidates, initial_labeled, validate_budget
from al_bench.build import build_dataset, build_strategy, new_model
from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.cold_start import EMBEDDING_INIT, cold_start_positions, init_strategy_of
from al_bench.data.base import ALDataModule
from al_bench.diagnostics import dispersion_accuracy_bins, plot_dispersion_accuracy
from al_bench.embeddings import LazyImages, RunEmbeddings, check_embedding
from al_bench.errors import ALBenchError, ConfigMismatchError, UnreadableStateError
from al_bench.inference import evaluate, predicted_labels
from al_bench.models.base import ALNet
from al_bench.ops.dynamics import label_dispersion
from al_bench.pool import ActivePool
from al_bench.posteriors.mc_dropout import MCDropoutPosterior, dropout_layers
from al_bench.proxy import check_proxy, fit_proxy, proxy_config
from al_bench.results import RunStore, atomic_write_text
from al_bench.run_identity import comparable, config_differences
from al_bench.scenarios import OOD, ScenarioPool, build_scenario
from al_bench.seeding import numpy_rng, torch_generator
from al_bench.strategies.base import SelectionContext, Strategy
from al_bench.tracking import format_duration, make_tracker
from al_bench.training import (
    callback_results,
    check_trainer_config,
    quiet_lightning,
    resolve_device,
    train_model,
)


@dataclass
class RunResult:
    """What :func:`run` returns: where the run lives, its curve, and how it ended."""

    run_dir: Path
    curve: pd.DataFrame
    status: str  # "finished" | "already_finished"


# ---- entry point ---------------------------------------------------------------------------------------
def run(cfg: DictConfig) -> RunResult:
    """Run (or resume) one AL experiment described by a composed config. Raises ALBenchError on user error.

    One process per run directory: from before it reads or writes the run's files until it ends, a run holds
    the directory's lock; a second process stops with one line naming the holder.
    """
    quiet_lightning()
    strategy = build_strategy(cfg)
    proxy_config(cfg)  # a malformed proxy stops here, before any data is loaded
    _default_validation_split(cfg, strategy)
    store = RunStore(cfg.paths.run_dir)
    if not cfg.get("overwrite", False) and (done := _already_finished(store, cfg)) is not None:
        return done
    lock = store.lock()
    lock.check()  # another process runs here: say so now, before loading any data

    seed = int(cfg.seed)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(str(cfg.trainer.get("accelerator", "auto")))
    scenario = build_scenario(cfg).build(build_dataset(cfg), seed)  # which pool, which oracle
    data = _data_module(cfg, scenario, device)
    validate_budget(cfg.budget, len(data.pool_indices), scenario.name)
    init_strategy_of(cfg.budget)  # an unknown cold start stops here, before any training
    check_embedding(str(cfg.budget.get("init_embedding") or "pretrained"), "budget.init")
    if strategy.needs_validation and len(data.val_indices) == 0:
        raise ALBenchError(
            f"strategy {cfg.strategy.name} needs a validation split: "
            f"set dataset.val_size (e.g. dataset.val_size={DEFAULT_VAL_SIZE})"
        )
    check_trainer_config(cfg.trainer, len(data.val_indices))
    _check_dropout(cfg, data, strategy, seed)
    check_proxy(cfg, data, strategy, seed)

    with lock:  # released at the end, also on failure (and by the OS if this process dies)
        return _run_locked(cfg, store, data, strategy, scenario)


#: validation labels given to a strategy that reads a validation split when the dataset config has none
DEFAULT_VAL_SIZE = 100


def _default_validation_split(cfg: DictConfig, strategy: Strategy) -> None:
    """A strategy that reads a validation split (ISAL, RALIF) gets ``dataset.val_size=100`` when the dataset
    has none: said once, stored in config.yaml, and counted in every curve row (``n_val``)."""
    if strategy.needs_validation and not int(cfg.dataset.get("val_size", 0) or 0):
        with open_dict(cfg):
            cfg.dataset.val_size = DEFAULT_VAL_SIZE
        _say(
            cfg,
            f"strategy {cfg.strategy.name} reads a validation split: dataset.val_size={DEFAULT_VAL_SIZE} "
            "(stratified, outside the pool; counted as labels in curve.csv's n_val)",
        )


def _embeddings(cfg: DictConfig, device: torch.device) -> RunEmbeddings:
    """The run's fixed embeddings (pretrained / SSL backbone features of its training images), computed on
    first use. In frozen mode the data module holds features, so the images are loaded again then."""
    images = cfg
    if cfg.model.get("freeze", False):
        images = copy.deepcopy(cfg)
        with open_dict(images):
            images.model.freeze = False
    return RunEmbeddings(cfg, LazyImages(lambda: build_dataset(images)), device)


def _initial_set(
    cfg: DictConfig, data: ALDataModule, embeddings: RunEmbeddings, seed: int
) -> tuple[np.ndarray, str]:
    """The initial labeled set [init_size] and the cold start that chose it (``budget.init_strategy``)."""
    method = init_strategy_of(cfg.budget)
    rng = numpy_rng(seed, "init_labeled")
    if method not in EMBEDDING_INIT:
        return initial_labeled(data, cfg.budget, rng, balanced=method == "balanced"), method
    kind = str(cfg.budget.get("init_embedding") or "pretrained")
    pool = data.pool_indices
    z = embeddings(kind)[torch.as_tensor(pool)].to(data.device)
    pos = cold_start_positions(method, z, int(cfg.budget.init_size), rng, n_clusters=data.num_classes)
    _say(cfg, f"cold start: {method} on the {kind} embedding chose {len(pos)} initial labels")
    return np.sort(pool[pos]), f"{method}:{kind}"


def _data_module(cfg: DictConfig, scenario: ScenarioPool, device: torch.device) -> ALDataModule:
    """The scenario's view of the dataset served by index, with the validation split and the pool drawn from
    the scenario's rows (the data module's own split would draw them from every train row)."""
    data = ALDataModule(
        scenario.dataset,
        batch_size=cfg.trainer.batch_size,
        eval_batch_size=cfg.trainer.eval_batch_size,
        augment=cfg.trainer.get("augment"),
        device=device,
    )
    val_size, val_seed = int(cfg.dataset.get("val_size", 0) or 0), int(cfg.dataset.get("val_seed", 0) or 0)
    data.val_indices, data.pool_indices = scenario.split(val_size, val_seed)
    return data


def _run_locked(
    cfg: DictConfig, store: RunStore, data: ALDataModule, strategy: Strategy, scenario: ScenarioPool
) -> RunResult:
    """The run under its directory's lock: start afresh (``overwrite=true`` clears first) or resume, then
    the cycles, checkpointing after each. Each curve row ends with the ``scenario``'s columns."""
    if cfg.get("overwrite", False):
        if store.exists():
            store.clear()
    elif (done := _already_finished(store, cfg)) is not None:  # finished by another process meanwhile
        return done
    seed = int(cfg.seed)
    pool = ActivePool(data.pool_indices, size=data.dataset.n_train, ood=scenario.ood)
    embeddings = _embeddings(cfg, data.device)
    rows: list[dict[str, Any]] = []
    net_state: dict | None = None
    start = 0
    if store.exists():
        _check_same_config(store, cfg)
        rows, net_state, start = _resume(store, cfg, pool, strategy)
        _say(cfg, f"resuming {store.dir} after cycle {start - 1}")
        init_method = str(rows[0].get("init_strategy", init_strategy_of(cfg.budget))) if rows else ""
    else:
        initial, init_method = _initial_set(cfg, data, embeddings, seed)
        pool.label(initial, cycle=0)
    store.write_config(OmegaConf.to_yaml(cfg, resolve=True))
    cycles = int(cfg.budget.cycles)
    store.write_status("running", cycles_done=start, cycles_total=cycles + 1)

    tracker = make_tracker(cfg, store.dir)
    tracker.start(rows)
    try:
        net: ALNet | None = None
        if net_state is not None:
            net = new_model(cfg, data, seed, 0)
            net.load_state_dict(net_state)
        started = time.perf_counter()
        for cycle in range(start, cycles + 1):
            net, row = run_cycle(cfg, data, pool, strategy, cycle, net, embeddings)
            row.update(scenario.record(pool.bought_through(cycle)))  # the labels this cycle trained with
            row.update(variant=str(cfg.get("variant") or ""), init_strategy=init_method)
            rows.append(row)
            tracker.log_row(row)
            eta = (time.perf_counter() - started) / (cycle + 1 - start) * (cycles - cycle)
            _say(cfg, format_row(row, cycles, eta))
            warm = bool(cfg.trainer.warm_start)
            store.save_state(
                {
                    "next_cycle": cycle + 1,
                    "pool": pool.state_dict(),
                    "rows": rows,
                    "strategy": strategy.state_dict(),
                    "net": {k: v.detach().cpu() for k, v in net.state_dict().items()} if warm else None,
                }
            )
            store.write_status("running", cycles_done=cycle + 1, cycles_total=cycles + 1)
            if not warm:
                net = None
    except BaseException as e:  # the finished cycles stay in state.pt; status.json says why the run stopped
        message = str(e) if isinstance(e, ALBenchError) else f"{type(e).__name__}: {e}"
        store.write_status("failed", message, cycles_done=len(rows), cycles_total=cycles + 1)
        tracker.finish(rows)
        raise
    store.write_status("finished", cycles_done=cycles + 1, cycles_total=cycles + 1)
    tracker.finish(rows)
    curve = pd.read_csv(store.curve_path)
    _say(cfg, ascii_curve(curve))
    _say(cfg, f"results: {store.dir}")
    return RunResult(store.dir, curve, "finished")


# ---- one cycle -----------------------------------------------------------------------------------------
def run_cycle(
    cfg: DictConfig,
    data: ALDataModule,
    pool: ActivePool,
    strategy: Strategy,
    cycle: int,
    net: ALNet | None,
    embeddings: RunEmbeddings | None = None,
) -> tuple[ALNet, dict[str, Any]]:
    """Train on the labeled set, evaluate, and (before the last cycle) select and label the next batch.

    With a proxy (``proxy``, :mod:`al_bench.proxy`) the target is trained plain for the curve, and a proxy
    trained on the same set, with the strategy's callbacks and auxiliary module, selects.
    """
    seed, cycles = int(cfg.seed), int(cfg.budget.cycles)
    candidates = draw_candidates(pool, cfg.budget.get("pool_subset"), numpy_rng(seed, "pool_subset", cycle))
    if net is None:
        net = new_model(cfg, data, seed, cycle)
    selects = cycle < cycles
    proxy_cfg = proxy_config(cfg)  # None: the target selects itself
    bf16 = bool(cfg.trainer.get("bf16_inference", True))
    strategy_callbacks = list(strategy.training_callbacks(data, candidates, cycle)) if selects else []
    callbacks = list(strategy_callbacks) if proxy_cfg is None else []  # the selecting model's fit gets them
    if cfg.get("diagnostics", False) and not any(
        getattr(cb, "key", None) == "pool_predictions" for cb in callbacks
    ):
        callbacks.append(PoolPredictionRecorder(data, candidates, key="pool_predictions"))
    for cb in [*callbacks, *strategy_callbacks]:
        if isinstance(cb, PoolPredictionRecorder):
            cb.bf16 = bf16
    aux = strategy.auxiliary_module(net) if proxy_cfg is None else None
    train_idx, labels, n_pseudo = _training_set(pool, data, strategy)

    t0 = time.perf_counter()
    module = train_model(cfg, net, data, train_idx, seed, cycle, callbacks=callbacks, aux=aux, labels=labels)
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = evaluate(net, data, posterior=_test_posterior(cfg, net, seed, cycle, bf16))
    val = evaluate(net, data, split="train", indices=data.val_indices) if len(data.val_indices) else {}
    eval_s = time.perf_counter() - t0

    row: dict[str, Any] = {
        "dataset": cfg.dataset.name, "model": cfg.model.name, "strategy": cfg.strategy.name,
        "budget": cfg.budget.name, "seed": seed, "cycle": cycle, "n_labeled": pool.n_labeled,
        "n_pseudo": n_pseudo, "n_val": len(data.val_indices), "test_acc": test["acc"],
        "test_loss": test["loss"], "balanced_acc": test["balanced_acc"],
        "worst_class_acc": test["worst_class_acc"], "macro_f1": test["macro_f1"],
        "val_acc": val.get("acc", np.nan), "val_loss": val.get("loss", np.nan),
        "train_acc": module.epoch_acc, "epochs": module.current_epoch, "train_s": train_s,
        "select_s": np.nan, "eval_s": eval_s, "proxy_train_s": np.nan, "proxy_test_acc": np.nan,
    }  # fmt: skip
    dynamics = callback_results(callbacks)
    if cfg.get("diagnostics", False) and "pool_predictions" in dynamics and distributed.is_main():
        write_dispersion_diagnostic(Path(cfg.paths.run_dir), cycle, net, data, dynamics["pool_predictions"])
    if selects:
        selector, selector_cfg = net, cfg
        if proxy_cfg is not None:  # the proxy selects: its fit's seconds and test accuracy go in the row
            fit = fit_proxy(proxy_cfg, data, strategy, train_idx, labels, seed, cycle, strategy_callbacks)
            row.update(
                proxy_train_s=fit.train_s, proxy_test_acc=fit.test_acc, eval_s=row["eval_s"] + fit.eval_s
            )
            selector, selector_cfg, dynamics = fit.net, proxy_cfg, fit.dynamics
        ctx = SelectionContext(
            model=selector,
            data=data,
            pool=pool,
            budget=int(cfg.budget.query_size),
            cycle=cycle,
            rng=numpy_rng(seed, "select", cycle),
            candidates=candidates,
            dynamics=dynamics,
            fit_model=lambda member_seed, **options: _fit_committee_member(
                selector_cfg, data, pool, member_seed, cycle, **options
            ),
            bf16=bf16,
            embeddings=embeddings,
        )
        t0 = time.perf_counter()
        picked = distributed.broadcast_indices(np.asarray(strategy.select(ctx), dtype=np.int64))
        row["select_s"] = time.perf_counter() - t0
        check_selection(picked, candidates, ctx.budget, cfg.strategy.name)
        pool.label(picked, cycle=cycle + 1)
    return net, row


# ---- resume --------------------------------------------------------------------------------------------
def _already_finished(store: RunStore, cfg: DictConfig) -> RunResult | None:
    """A finished run (same config) is reported, not redone; None when there is none."""
    if not (store.exists() and store.read_status().get("state") == "finished"):
        return None
    _check_same_config(store, cfg)
    _say(cfg, f"already finished: results in {store.dir} (overwrite=true to redo it)")
    return RunResult(store.dir, pd.read_csv(store.curve_path), "already_finished")


def _resume(
    store: RunStore, cfg: DictConfig, pool: ActivePool, strategy: Strategy
) -> tuple[list[dict[str, Any]], dict | None, int]:
    """Curve rows, warm-start weights and the next cycle from state.pt, restoring ``pool`` and ``strategy``
    in place. When state.pt cannot be read: see :func:`_recover`."""
    try:
        state = store.load_state()
    except UnreadableStateError as e:
        return _recover(store, cfg, pool, strategy, str(e))
    pool.load_state_dict(state["pool"])
    strategy.load_state_dict(state.get("strategy", {}))
    return state["rows"], state.get("net"), int(state["next_cycle"])


def _recover(
    store: RunStore, cfg: DictConfig, pool: ActivePool, strategy: Strategy, problem: str
) -> tuple[list[dict[str, Any]], None, int]:
    """With ``recover=true``, rebuild what state.pt held from curve.csv (rows) and selected.csv (pool): exact
    for a cold-start run of a strategy without state, since everything else derives from (seed, purpose,
    cycle). Otherwise raise one line saying what is kept and how to go on; the CSV files stay untouched."""
    try:
        n_done = len(store.read_curve_rows())
        done = f"{n_done} finished cycles: 0-{n_done - 1}" if n_done > 1 else "1 finished cycle: 0"
        kept = f"curve.csv ({done}) and selected.csv are left untouched"
    except ValueError as e:
        n_done, kept = 0, f"curve.csv and selected.csv are left untouched ({e})"
    rows: list[dict[str, Any]] = []
    if cfg.trainer.get("warm_start", False):
        obstacle = "trainer.warm_start=true needs the network weights, which only state.pt held"
    elif type(strategy).state_dict is not Strategy.state_dict:
        obstacle = f"strategy {cfg.strategy.name} carries state between cycles, which only state.pt held"
    else:
        try:
            rows, selected = store.read_finished()
            k = len(rows)
            if k <= int(cfg.budget.cycles) and (selected["cycle"] == k).sum() != int(cfg.budget.query_size):
                raise ValueError(f"selected.csv lacks the selections of cycle {k}")
            for cycle, group in selected.groupby("cycle"):
                pool.label(group["index"].to_numpy(), cycle=int(cycle))
            obstacle = None
        except ValueError as e:  # the CSV files disagree with each other or with this config's pool
            obstacle = str(e)
    if obstacle is None and cfg.get("recover", False):
        _say(cfg, f"{problem}; recovering the run from curve.csv and selected.csv")
        return rows, None, len(rows)
    how = "overwrite=true redoes the run from scratch"
    if obstacle is None:
        how += f", or recover=true resumes after cycle {len(rows) - 1} from curve.csv and selected.csv"
    elif cfg.get("recover", False):
        kept += f"; recover=true cannot rebuild state.pt: {obstacle}"
    message = f"{problem}; {kept}; to continue: {how}"
    store.write_status("failed", message, cycles_done=n_done, cycles_total=int(cfg.budget.cycles) + 1)
    raise UnreadableStateError(message)


# ---- helpers -------------------------------------------------------------------------------------------
def write_dispersion_diagnostic(
    run_dir: Path, cycle: int, net: ALNet, data: ALDataModule, record: dict
) -> None:
    """Bengar et al.'s Fig. 11 for this cycle: pool samples binned by label dispersion against the trained
    model's accuracy on them (uses the oracle's labels of the whole pool, for the diagnostic only: selection
    never sees them; out-of-distribution samples, which have no right answer, are left out)."""
    history = record["history"]
    known = (data.labels(record["indices"]) != OOD).cpu()
    history, indices = history[known], np.asarray(record["indices"])[known.numpy()]
    if history.shape[0] == 0 or history.shape[1] == 0:
        return
    dispersion = label_dispersion(history)
    correct = predicted_labels(net, data, indices).cpu() == data.labels(indices).cpu()
    frame = dispersion_accuracy_bins(dispersion, correct)
    atomic_write_text(run_dir / f"diagnostics_dispersion_cycle{cycle}.csv", frame.to_csv(index=False))
    plot_dispersion_accuracy(frame, run_dir / f"diagnostics_dispersion_cycle{cycle}.png")


def check_selection(picked: np.ndarray, candidates: np.ndarray, budget: int, name: str) -> None:
    """A strategy must return exactly ``budget`` unique indices taken from ``candidates``."""
    if picked.ndim != 1 or len(picked) != budget:
        raise RuntimeError(f"strategy {name} returned {picked.shape} indices, expected {budget}")
    if len(np.unique(picked)) != budget:
        raise RuntimeError(f"strategy {name} returned duplicate indices")
    if not np.isin(picked, candidates).all():
        raise RuntimeError(f"strategy {name} returned indices outside the candidates")


def _check_dropout(cfg: DictConfig, data: ALDataModule, strategy: Strategy, seed: int) -> None:
    """Refuse, before any training, MC dropout (a strategy's or the test's) on a model without dropout (with a
    proxy the strategy's runs on the proxy: :func:`al_bench.proxy.check_proxy`)."""
    selects_itself = proxy_config(cfg) is None
    wants = [f"strategy {cfg.strategy.name}"] if strategy.needs_mc_dropout and selects_itself else []
    if int(cfg.trainer.get("eval_mc_samples") or 0) > 0:
        wants.append("trainer.eval_mc_samples")
    if wants and not dropout_layers(new_model(cfg, data, seed, 0)):
        raise ALBenchError(
            f"{' and '.join(wants)} need(s) MC dropout, but model {cfg.model.name} has no dropout layer with "
            "p > 0: give the model dropout (e.g. model.dropout=0.3) or choose another strategy"
        )


def _test_posterior(
    cfg: DictConfig, net: ALNet, seed: int, cycle: int, bf16: bool
) -> MCDropoutPosterior | None:
    """With ``trainer.eval_mc_samples`` > 0: the consistent MC-dropout functions that test predictions use."""
    n = int(cfg.trainer.get("eval_mc_samples") or 0)
    if n <= 0:
        return None
    return MCDropoutPosterior(net, n, torch_generator(seed, "eval_mc", cycle), bf16=bf16)


def _training_set(
    pool: ActivePool, data: ALDataModule, strategy: Strategy
) -> tuple[np.ndarray, torch.Tensor | None, int]:
    """Labeled indices plus the strategy's pseudo-labeled ones (never counted as labels)."""
    labeled = pool.labeled_indices
    pseudo = strategy.pseudo_labels()
    if pseudo is None or len(pseudo[0]) == 0:
        return labeled, None, 0
    idx, lab = np.asarray(pseudo[0], dtype=np.int64), np.asarray(pseudo[1], dtype=np.int64)
    keep = ~pool.is_labeled(idx)
    idx, lab = idx[keep], lab[keep]
    labels = data.dataset.y_train.clone()
    labels[torch.as_tensor(idx)] = torch.as_tensor(lab)
    return np.concatenate([labeled, idx]), labels, len(idx)


def _fit_committee_member(
    cfg: DictConfig,
    data: ALDataModule,
    pool: ActivePool,
    member_seed: int,
    cycle: int,
    indices: np.ndarray | None = None,
    **options: Any,
) -> ALNet:
    """A fresh model trained with the run's recipe on the labeled set, or on global ``indices`` (duplicates
    allowed: a bootstrap resample), initialised and shuffled from ``member_seed``; ``options`` go to
    :func:`~al_bench.training.train_model` (posterior sources: ``epochs_fraction``, ``init_state``,
    ``prepare``, ``early_stopping``, ``callbacks``, ``aux``)."""
    net = new_model(cfg, data, int(member_seed), cycle)
    train_idx = pool.labeled_indices if indices is None else np.asarray(indices, dtype=np.int64)
    train_model(cfg, net, data, train_idx, int(member_seed), cycle, purpose="committee", **options)
    return net


def _check_same_config(store: RunStore, cfg: DictConfig) -> None:
    if not store.config_path.exists():
        return
    diff = config_differences(comparable(OmegaConf.load(store.config_path)), comparable(cfg))
    if diff:
        raise ConfigMismatchError(
            f"{store.dir} holds a run with another config (differs in: {', '.join(diff[:6])}); "
            "use overwrite=true to replace it, or another paths.results_dir / strategy.name"
        )


def format_row(row: dict[str, Any], cycles: int, eta_s: float | None = None) -> str:
    """One status line per cycle (with the run's name in a sweep, where lines of several runs interleave)."""
    sel = "" if np.isnan(row["select_s"]) else f" | select {row['select_s']:.2f}s"
    proxy_s = row.get("proxy_train_s", np.nan)
    sel = sel if np.isnan(proxy_s) else f" | proxy {proxy_s:.1f}s{sel}"
    spent = "".join(f" ({row[k]} {k[2:]})" for k in ("n_ood", "n_noisy") if row.get(k))
    eta = "" if eta_s is None or row["cycle"] >= cycles else f" | ETA {format_duration(eta_s)}"
    return (
        f"{row['strategy']} seed {row['seed']} | cycle {row['cycle']:>3}/{cycles} | labeled "
        f"{row['n_labeled']:>6}{spent} | test acc {row['test_acc']:.4f} | test loss {row['test_loss']:.4f}"
        f" | train {row['train_s']:.1f}s{sel}{eta}"
    )


def ascii_curve(curve: pd.DataFrame, width: int = 40) -> str:
    """The learning curve as a terminal bar chart: one line per cycle."""
    lines = [f"learning curve ({curve['strategy'].iloc[0]}, seed {curve['seed'].iloc[0]}):"]
    for _, r in curve.iterrows():
        bar = "#" * int(round(r["test_acc"] * width))
        lines.append(f"  {int(r['n_labeled']):>6} labels  {100 * r['test_acc']:6.2f}%  {bar}")
    return "\n".join(lines)


def _say(cfg: DictConfig, message: str) -> None:
    if cfg.get("verbose", True) and distributed.is_main():
        print(message, flush=True)
