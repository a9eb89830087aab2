"""``python -m al_bench.report DIR --status``: one line per run (state, finished cycles / total, message).

Reads only ``status.json``, ``curve.csv`` and ``config.yaml`` (no plots, nothing written), so it is cheap to
call while a sweep runs. A running run shows how long ago its status.json was written: a run whose process
died stays "running" there, and its age gives it away.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from al_bench.report.aggregate import load_status

#: order of the lines: what needs attention first
STATE_ORDER: dict[str, int] = {"failed": 0, "unknown": 1, "running": 2, "finished": 3}


def status_lines(results_dir: str | Path, now: float | None = None) -> list[str]:
    """The lines of ``--status``: a header, one line per run (failed, unknown, running, finished; then by
    path), and a count line. ``now`` (seconds since the epoch) fixes the clock for the ages of running runs.

    A run's cycles are status.json's ``cycles_done / cycles_total``; for an older run without status.json,
    the rows of its curve.csv over ``budget.cycles + 1`` from its config.yaml ("?" when unknown).
    Raises ALBenchError when the directory does not exist.
    """
    root = Path(results_dir).expanduser().resolve()
    status = load_status(root)
    if status.empty:
        return [f"no runs under {root} (no curve.csv or status.json)"]
    now = time.time() if now is None else now
    rows = []
    for _, row in status.iterrows():
        run_dir = Path(row["run_dir"])
        done, total = _cycles(row, run_dir)
        message = str(row["message"] or "")
        if row["state"] == "running":
            age = _age(run_dir / "status.json", now)
            message = f"{message}; {age}" if message else age
        order = STATE_ORDER.get(str(row["state"]), 1)
        rows.append((order, _relative(run_dir, root), str(row["state"]), done, total, message))
    rows.sort(key=lambda r: (r[0], r[1]))
    width = max(len(r[1]) for r in rows)
    lines = [f"{'state':<8}  {'cycles':>7}  {'run':<{width}}  message"]
    for _, path, state, done, total, message in rows:
        lines.append(f"{state:<8}  {f'{done}/{total}':>7}  {path:<{width}}  {message}".rstrip())
    counts = status["state"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in sorted(counts.index, key=lambda s: STATE_ORDER.get(s, 1)))
    lines.append(f"{len(status)} runs: {summary}")
    return lines


def _cycles(row: pd.Series, run_dir: Path) -> tuple[str, str]:
    """(finished cycles, total cycles) as text, from status.json, else curve.csv and config.yaml."""
    done, total = row["cycles_done"], row["cycles_total"]
    if pd.isna(done):
        curve = run_dir / "curve.csv"
        try:
            done = len(pd.read_csv(curve)) if curve.exists() else pd.NA
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            done = pd.NA
    if pd.isna(total):
        total = _total_from_config(run_dir / "config.yaml")
    return ("?" if pd.isna(done) else str(int(done))), ("?" if pd.isna(total) else str(int(total)))


def _total_from_config(path: Path) -> int | float:
    """``budget.cycles + 1`` (cycle 0 is the initial set) from a run's config.yaml; NaN when unknown."""
    if not path.exists():
        return float("nan")
    try:
        import yaml

        config = yaml.safe_load(path.read_text())
        return int(config["budget"]["cycles"]) + 1
    except Exception:  # noqa: BLE001 - a config we cannot read only costs the total
        return float("nan")


def _age(path: Path, now: float) -> str:
    """``status.json written 12 min ago`` from the file's modification time."""
    try:
        seconds = max(0.0, now - path.stat().st_mtime)
    except OSError:
        return "status.json age unknown"
    if seconds < 60:
        when = "< 1 min"
    elif seconds < 3600:
        when = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        when = f"{seconds / 3600:.1f} h"
    else:
        when = f"{seconds / 86400:.1f} d"
    return f"status.json written {when} ago"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)
