"""Experiment trackers: the curve rows go to curve.csv always; ``logger=wandb`` also sends them to W&B."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from al_bench import distributed
from al_bench.errors import ALBenchError


class Tracker:
    """No-op tracker (``logger=csv``: curve.csv is written by the run store)."""

    def start(self, rows: list[dict[str, Any]]) -> None: ...

    def log_row(self, row: dict[str, Any]) -> None: ...

    def finish(self, rows: list[dict[str, Any]]) -> None: ...


class WandbTracker(Tracker):
    """Sends the resolved config and each curve row to Weights & Biases; offline when no API key is set.

    Runs of one sweep share ``group`` (default: dataset-model-budget), so W&B shows them together; at the end
    the whole curve is logged as a table and a line plot of test accuracy against labels.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.run: Any = None

    def start(self, rows: list[dict[str, Any]]) -> None:
        try:
            import wandb
        except ImportError as e:  # pragma: no cover - wandb is a dependency
            raise ALBenchError("logger=wandb needs the wandb package: pip install wandb") from e
        lcfg = self.cfg.logger
        mode = lcfg.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.run = wandb.init(
            project=lcfg.get("project", "al_bench"),
            entity=lcfg.get("entity"),
            group=lcfg.get("group"),
            name=f"{self.cfg.strategy.name}-seed{self.cfg.seed}",
            tags=list(lcfg.get("tags") or []),
            config=OmegaConf.to_container(self.cfg, resolve=True),
            dir=str(self.run_dir),
            mode=mode,
            reinit="finish_previous",
        )
        for row in rows:  # a resumed run re-sends what it already had
            self.log_row(row)

    def log_row(self, row: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=int(row["cycle"]))

    def finish(self, rows: list[dict[str, Any]]) -> None:
        if self.run is None:
            return
        import wandb

        if rows:
            columns = list(rows[0])
            table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
            self.run.log({"curve": table})
            self.run.log(
                {
                    "learning_curve": wandb.plot.line(
                        table, "n_labeled", "test_acc", title="test accuracy vs labels"
                    )
                }
            )
        self.run.finish()
        self.run = None


def make_tracker(cfg: DictConfig, run_dir: Path) -> Tracker:
    name = cfg.get("logger", {}).get("name", "csv") if cfg.get("logger") else "csv"
    if name == "csv":
        return Tracker()
    if name == "wandb":
        return WandbTracker(cfg, run_dir) if distributed.is_main() else Tracker()
    raise ALBenchError(f"unknown logger {name!r}; valid: csv, wandb")


def format_duration(seconds: float) -> str:
    """A remaining time for progress lines: ``75`` -> ``"1m15s"``, ``4000`` -> ``"1h06m"``."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
