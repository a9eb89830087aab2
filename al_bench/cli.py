"""Thin Hydra entry point ``python -m al_bench [overrides]``; the logic lives in :func:`al_bench.loop.run`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from al_bench.errors import ALBenchError


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


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one AL experiment. A user error prints one line and exits 2 (in a sweep: the job is marked
    failed in its status.json and the sweep goes on)."""
    from al_bench.loop import run

    try:
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
