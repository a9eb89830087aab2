"""Thin Hydra entry ``python -m al_bench.pretrain [dataset=...] [ssl=...] [key=value ...]``; the logic lives
in :func:`al_bench.pretrain.runner.run`."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from al_bench.cli import _in_multirun, config_dir
from al_bench.errors import ALBenchError


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="pretrain")
def main(cfg: DictConfig) -> float | None:
    """Pretrain one encoder and print where it went. A user error prints one line and exits 2 (in a sweep:
    the line, and the sweep goes on)."""
    from al_bench.pretrain.runner import run

    try:
        result = run(cfg)
    except ALBenchError as e:
        print(f"al_bench: error: {e}", file=sys.stderr, flush=True)
        if _in_multirun():
            return None
        sys.exit(2)
    print(f"al_bench.pretrain: run directory {result.run_dir}", flush=True)
    return result.losses[-1] if result.losses else None


if __name__ == "__main__":
    main()
