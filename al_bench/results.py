"""A run's files (curve.csv, selected.csv, config.yaml, status.json, resume state), written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from al_bench import distributed

CURVE_COLUMNS = [
    "dataset", "model", "strategy", "budget", "seed", "cycle", "n_labeled", "n_pseudo", "n_val",
    "test_acc", "test_loss", "val_acc", "val_loss", "train_acc", "epochs", "train_s", "select_s", "eval_s",
]  # fmt: skip


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class RunStore:
    """The directory of one run: ``<results_dir>/<dataset>/<model>/<strategy>/seed=<seed>/``.

    ``state.pt`` is the single source of truth for resuming (pool, curve rows, selections, strategy state,
    warm-start weights); the CSV files are views of it rewritten after every cycle. Under DDP only rank 0
    writes.
    """

    STATE = "state.pt"

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)

    @property
    def curve_path(self) -> Path:
        return self.dir / "curve.csv"

    @property
    def selected_path(self) -> Path:
        return self.dir / "selected.csv"

    @property
    def config_path(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    def exists(self) -> bool:
        return (self.dir / self.STATE).exists()

    def load_state(self) -> dict[str, Any]:
        import torch

        return torch.load(self.dir / self.STATE, map_location="cpu", weights_only=False)

    def save_state(self, state: dict[str, Any]) -> None:
        """Persist the resume state, then the CSV views of it (each file atomically)."""
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        buf = _to_bytes(state)
        atomic_write_bytes(self.dir / self.STATE, buf)
        self.write_curve(state["rows"])
        self.write_selected(state["pool"]["labeled_cycle"])

    def write_curve(self, rows: Iterable[dict]) -> None:
        frame = pd.DataFrame(list(rows))
        cols = [c for c in CURVE_COLUMNS if c in frame.columns] + [
            c for c in frame.columns if c not in CURVE_COLUMNS
        ]
        atomic_write_text(self.curve_path, frame[cols].to_csv(index=False))

    def write_selected(self, labeled_cycle: np.ndarray) -> None:
        """selected.csv: one row per labeled global index with the cycle whose training first used it."""
        idx = np.flatnonzero(np.asarray(labeled_cycle) >= 0)
        frame = pd.DataFrame({"cycle": np.asarray(labeled_cycle)[idx], "index": idx})
        frame = frame.sort_values(["cycle", "index"], kind="stable")
        atomic_write_text(self.selected_path, frame.to_csv(index=False))

    def write_config(self, yaml_text: str) -> None:
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        atomic_write_text(self.config_path, yaml_text)

    def write_status(self, state: str, message: str = "", **extra: Any) -> None:
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        atomic_write_text(
            self.status_path, json.dumps({"state": state, "message": message, **extra}, indent=1)
        )

    def read_status(self) -> dict[str, Any]:
        if not self.status_path.exists():
            return {}
        return json.loads(self.status_path.read_text())

    def clear(self) -> None:
        """Remove this run's own files (only those al_bench writes), for ``overwrite=true``."""
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        for name in (self.STATE, "curve.csv", "selected.csv", "config.yaml", "status.json"):
            (self.dir / name).unlink(missing_ok=True)
        for extra in self.dir.glob("diagnostics_*"):
            extra.unlink()


def _to_bytes(obj: Any) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
