"""The cluster_margin strategy on tiny selection contexts whose embedding is the input itself, its state
across a resume through the loop, and CLI / CIFAR-shaped runs."""

from __future__ import annotations

import inspect
import subprocess
import time
from pathlib import Path

import hydra.utils
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import al_bench.loop as loop
import al_bench.strategies.cluster_margin as cm_module
from al_bench.build import build_strategy
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.base import ALNet
from al_bench.ops.cluster_margin import cluster_margin_select, cluster_pool
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.cluster_margin import ClusterMargin
from tests.conftest import PYTHON, ROOT

YAML = ROOT / "configs" / "strategy" / "cluster_margin.yaml"
CIFAR_SHAPED = [
    "dataset=synthetic", "dataset.shape=[3,32,32]", "dataset.as_uint8=true", "dataset.n_train=60",
    "dataset.n_test=20", "dataset.num_classes=4", "dataset.val_size=8", "model=resnet18", "model.dropout=0.2",
    "budget.init_size=8", "budget.query_size=4", "budget.cycles=1", "trainer.max_epochs=1",
    "trainer.batch_size=8", "verbose=false",
]  # fmt: skip


class IdentityNet(ALNet):
    """Penultimate features = the input rows [B, D] (the test chooses the embedding); a seeded random head."""

    def __init__(self, dim: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.feature_dim, self.num_classes = dim, num_classes
        self.head = nn.Linear(dim, num_classes)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(num_classes, dim, generator=g))
            self.head.bias.copy_(torch.randn(num_classes, generator=g))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return z


def make_data(n: int = 80, num_classes: int = 3) -> ALDataModule:
    """Clumps in 3-D (one per class, well apart) with noise."""
    g = torch.Generator().manual_seed(123)
    centres = 6 * torch.randn(num_classes, 3, generator=g)
    y = torch.arange(n) % num_classes
    x = centres[y] + torch.randn(n, 3, generator=g)
    ds = ArrayDataset("tiny", x, y, x[:10], y[:10], num_classes=num_classes)
    return ALDataModule(ds, batch_size=16, eval_batch_size=32)


def make_ctx(
    budget: int = 6,
    seed: int = 0,
    candidates: np.ndarray | None = None,
    n_labeled: int = 6,
    cycle: int = 0,
    net_seed: int = 0,
    data: ALDataModule | None = None,
    pool: ActivePool | None = None,
) -> SelectionContext:
    data = data or make_data()
    if pool is None:
        pool = ActivePool(data.pool_indices, size=data.dataset.n_train)
        pool.label(np.arange(n_labeled), cycle=0)
    net = IdentityNet(3, data.num_classes, net_seed)
    return SelectionContext(
        net, data, pool, budget, cycle, np.random.default_rng(seed), candidates=candidates
    )


def test_yaml_documents_every_constructor_kwarg():
    text = YAML.read_text()
    kw = OmegaConf.to_container(OmegaConf.load(YAML))
    assert kw.pop("name") == "cluster_margin"
    cls = hydra.utils.get_class(kw.pop("_target_"))
    assert cls is ClusterMargin
    params = inspect.signature(cls.__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value, f"{key}: yaml {value} != default {params[key].default}"
        line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
        assert "#" in line, f"{key} has no comment"


@pytest.mark.parametrize("epsilon", [None, 2.0, 0.0])
def test_returns_unique_global_candidate_indices(epsilon):
    cand = np.arange(20, 80, 2)  # a subset of the unlabeled pool (as budget.pool_subset makes)
    ctx = make_ctx(budget=7, candidates=cand)
    picks = ClusterMargin(epsilon=epsilon).select(ctx)
    assert len(picks) == 7 and len(np.unique(picks)) == 7 and picks.dtype == np.int64
    assert np.isin(picks, cand).all() and not np.isin(picks, ctx.labeled).any()


def test_clusters_the_whole_unlabeled_pool_once_not_only_the_candidates():
    cand = np.arange(20, 80, 2)
    ctx = make_ctx(candidates=cand)
    strategy = ClusterMargin()
    assert strategy.cluster_of is None
    strategy.select(ctx)
    ids = strategy.cluster_of
    assert ids is not None and ids.shape == (80,)
    assert (ids[ctx.labeled] == -1).all() and (ids[ctx.pool.unlabeled_indices] >= 0).all()
    x = ctx.data.dataset.x_train
    unl = ctx.pool.unlabeled_indices
    want, eps = cluster_pool(x[unl], None, 10.0, 5000, np.random.default_rng(0))
    assert strategy.epsilon_used == eps
    clusters = {frozenset(unl[want == c].tolist()) for c in np.unique(want)}
    assert {frozenset(np.flatnonzero(ids == c).tolist()) for c in np.unique(ids[ids >= 0])} == clusters


def test_equals_the_kernels_run_by_hand():
    """First selection: HAC of the unlabeled pool in [candidates, others] order, then margins and the
    round-robin, all on ctx.rng; a later selection (another model) keeps the clusters and draws afresh."""
    cand = np.arange(10, 80, 3)
    strategy = ClusterMargin(k_m_factor=2.0, target_cluster_size=4.0)
    ctx = make_ctx(budget=5, seed=7, candidates=cand)
    picks = strategy.select(ctx)

    rng = np.random.default_rng(7)
    x = ctx.data.dataset.x_train
    others = np.setdiff1d(ctx.pool.unlabeled_indices, cand)
    order = np.concatenate([cand, others])
    labels, _ = cluster_pool(x[order], None, 4.0, 5000, rng)
    cluster_of = np.full(80, -1)
    cluster_of[order] = labels
    top2 = ctx.probs().topk(2, dim=1).values
    pos = cluster_margin_select(top2[:, 0] - top2[:, 1], cluster_of[cand], 5, 10, rng)
    np.testing.assert_array_equal(picks, cand[pos])

    ctx.pool.label(picks, cycle=1)
    cand2 = np.setdiff1d(cand, picks)
    ctx2 = make_ctx(budget=5, seed=8, candidates=cand2, pool=ctx.pool, data=ctx.data, cycle=1, net_seed=1)
    picks2 = strategy.select(ctx2)
    top2 = ctx2.probs().topk(2, dim=1).values
    pos2 = cluster_margin_select(
        top2[:, 0] - top2[:, 1], cluster_of[cand2], 5, 10, np.random.default_rng(8)
    )  # no clustering draw: the clusters of the first selection are reused
    np.testing.assert_array_equal(picks2, cand2[pos2])


def test_k_m_is_the_factor_times_the_budget_rounded_up():
    assert ClusterMargin().k_m(100) == 125
    assert ClusterMargin().k_m(10) == 13
    assert ClusterMargin(k_m_factor=1.0).k_m(7) == 7
    assert ClusterMargin(k_m_factor=1.1).k_m(10) == 11, "no float overshoot to 12"


def test_k_m_equal_budget_is_margin_sampling():
    ctx = make_ctx(budget=5, seed=3)
    picks = ClusterMargin(k_m_factor=1.0).select(ctx)
    top2 = ctx.probs().topk(2, dim=1).values
    margins = (top2[:, 0] - top2[:, 1]).numpy()
    np.testing.assert_array_equal(np.sort(picks), np.sort(ctx.candidates[np.argsort(margins)[:5]]))


def test_deterministic_per_seed():
    a = ClusterMargin(k_m_factor=3.0).select(make_ctx(seed=3))
    b = ClusterMargin(k_m_factor=3.0).select(make_ctx(seed=3))
    np.testing.assert_array_equal(a, b)
    picks = {tuple(np.sort(ClusterMargin(k_m_factor=3.0).select(make_ctx(seed=s)))) for s in range(5)}
    assert len(picks) > 1, "random members of the clusters: the seed matters"


def test_subset_clustering_above_max_cluster_points_labels_every_pool_point():
    strategy = ClusterMargin(max_cluster_points=20)
    ctx = make_ctx()
    strategy.select(ctx)
    assert (strategy.cluster_of[ctx.pool.unlabeled_indices] >= 0).all()


def test_state_round_trip_through_a_weights_only_file(tmp_path):
    first = ClusterMargin(target_cluster_size=3.0)
    assert first.state_dict() == {}
    ctx = make_ctx(seed=1)
    first.select(ctx)
    path = tmp_path / "s.pt"
    torch.save(first.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert isinstance(state["cluster_of"], torch.Tensor) and state["cluster_of"].dtype == torch.int64

    resumed = ClusterMargin(target_cluster_size=3.0)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(resumed.cluster_of, first.cluster_of)
    assert resumed.epsilon_used == first.epsilon_used
    ctx.pool.label(ctx.candidates[:3], cycle=1)
    picks = [s.select(make_ctx(seed=9, pool=ctx.pool, data=ctx.data, net_seed=2)) for s in (first, resumed)]
    np.testing.assert_array_equal(picks[0], picks[1])
    resumed.load_state_dict({})
    assert resumed.cluster_of is None


def test_resumed_run_picks_as_the_uninterrupted_one_without_clustering_again(make_cfg, tmp_path, monkeypatch):
    common = ["strategy=cluster_margin", "budget.cycles=3", "strategy.k_m_factor=2"]
    reference = run(make_cfg(*common, f"paths.run_dir={tmp_path}/ref"))

    real_run_cycle = loop.run_cycle

    def crash_in_cycle_2(cfg, data, pool, strategy, cycle, net, *rest):
        if cycle == 2:
            raise KeyboardInterrupt("simulated kill")
        return real_run_cycle(cfg, data, pool, strategy, cycle, net, *rest)

    monkeypatch.setattr(loop, "run_cycle", crash_in_cycle_2)
    cfg = make_cfg(*common, f"paths.run_dir={tmp_path}/crash")
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    assert pd.read_csv(tmp_path / "crash" / "curve.csv")["cycle"].tolist() == [0, 1]
    monkeypatch.setattr(loop, "run_cycle", real_run_cycle)

    def no_second_clustering(*args, **kwargs):
        raise AssertionError("the resumed run clustered the pool again")

    monkeypatch.setattr(cm_module, "cluster_pool", no_second_clustering)
    resumed = run(cfg)
    drop = ["train_s", "select_s", "eval_s"]
    pd.testing.assert_frame_equal(resumed.curve.drop(columns=drop), reference.curve.drop(columns=drop))
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.run_dir / "selected.csv"), pd.read_csv(reference.run_dir / "selected.csv")
    )


def test_bad_options_are_one_line_errors(make_cfg):
    for kwargs, match in [
        ({"k_m_factor": 0.5}, "k_m_factor"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"target_cluster_size": 0.5}, "target_cluster_size"),
        ({"max_cluster_points": 1}, "max_cluster_points"),
    ]:
        with pytest.raises(ALBenchError, match=match) as err:
            ClusterMargin(**kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(ALBenchError, match="k_m_factor"):
        build_strategy(make_cfg("strategy=cluster_margin", "strategy.k_m_factor=0.9"))


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    start = time.perf_counter()
    cmd = [
        PYTHON,
        "-m",
        "al_bench",
        "strategy=cluster_margin",
        "budget.cycles=2",
        f"paths.results_dir={tmp_path}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (curve_path,) = tmp_path.glob(
        "digits/mlp/cluster_margin/**/seed=0/curve.csv"
    )  # with or without a variant
    curve = pd.read_csv(curve_path)
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    print(f"cluster_margin CLI run: {time.perf_counter() - start:.1f} s")


@pytest.mark.slow
def test_one_cycle_on_cifar_shaped_data(make_cfg):
    result = run(make_cfg(*CIFAR_SHAPED, "strategy=cluster_margin", tiny=False))
    assert result.curve["n_labeled"].tolist() == [8, 12]
