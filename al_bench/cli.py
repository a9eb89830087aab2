"""Thin Hydra entry point ``python -m al_bench [overrides]``; the logic lives in :func:`al_bench.loop.run`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from al_bench.errors import ALBenchError
from al_bench.run_identity import IDENTITY_KEYS, parse_override, variant_dirname, variant_name


def config_dir() -> str:
    """The config tree: ``configs/`` of a source checkout, else the copy shipped inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "configs"):
        if (candidate / "config.yaml").exists():
            return str(candidate)
    raise RuntimeError(f"al_bench config tree not found next to {here}")


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _mark_failed(cfg: DictConfig, error: ALBenchError) -> None:
    """In a sweep, leave a failed status.json so the report lists the job and why (never over a real run)."""
    from al_bench.errors import ConfigMismatchError, RunLockedError
    from al_bench.results import RunStore

    store = RunStore(cfg.paths.run_dir)
    if not isinstance(error, ConfigMismatchError | RunLockedError) and not store.exists():
        store.write_status(
            "failed", str(error), cycles_done=0, cycles_total=int(cfg.budget.get("cycles", 0)) + 1
        )


def command_line_variant(cfg: DictConfig) -> str:
    """The variant of this run from Hydra's task overrides (see :mod:`al_bench.run_identity`).

    An explicit ``variant=<name>`` wins (``variant=`` turns the suffix off); so does an explicit
    ``paths.run_dir``. Otherwise each override is compared with the config composed from the same dataset,
    model, strategy, seed and experiment alone: overrides that leave the config unchanged are dropped.
    """
    hydra_cfg = HydraConfig.get()
    task = list(hydra_cfg.overrides.task)
    parsed = [parse_override(o) for o in task]
    for _, key, value in parsed:
        if key == "variant":
            return value.strip("'\"")
        if key == "paths.run_dir":
            return ""
    base_overrides = [o for o, (_, key, _) in zip(task, parsed) if key.split("@")[0] in IDENTITY_KEYS]
    base = hydra.compose(config_name="config", overrides=base_overrides, return_hydra_config=True)
    chosen, base_chosen = hydra_cfg.runtime.choices, base.hydra.runtime.choices

    def changes(prefix: str, key: str, value: str) -> bool:
        group = key.split("@")[0]
        if group in chosen or group in base_chosen:
            return chosen.get(group) != base_chosen.get(group)
        if prefix == "~":
            return True
        new, old = OmegaConf.select(cfg, key), OmegaConf.select(base, key)
        as_plain = lambda v: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        return as_plain(new) != as_plain(old)

    return variant_name(task, changes)


def apply_variant(cfg: DictConfig, variant: str) -> None:
    """Record ``variant`` in the config and put the run one directory level under it (before ``seed=``)."""
    with open_dict(cfg):
        cfg.variant = variant
        if variant:
            run_dir = Path(str(cfg.paths.run_dir))
            cfg.paths.run_dir = str(run_dir.parent / variant_dirname(variant) / run_dir.name)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one AL experiment. A user error prints one line and exits 2 (in a sweep: the job is marked
    failed in its status.json and the sweep goes on)."""
    from al_bench.loop import run

    try:
        apply_variant(cfg, command_line_variant(cfg))
        if _in_multirun() and cfg.trainer.get("progress_bar") == "auto":  # jobs share one terminal
            cfg.trainer.progress_bar = False
        result = run(cfg)
    except ALBenchError as e:
        print(f"al_bench: error: {e}", file=sys.stderr, flush=True)
        if _in_multirun():
            _mark_failed(cfg, e)
            return None
        sys.exit(2)
    except Exception as e:  # a bug in one sweep job must not stop the others; its status.json says why
        if not _in_multirun():
            raise
        print(f"al_bench: job failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return None
    return float(result.curve["test_acc"].iloc[-1])


if __name__ == "__main__":
    main()
