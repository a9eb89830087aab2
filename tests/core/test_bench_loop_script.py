"""The loop benchmark runs end to end at --quick size and writes its figures (no timing assertions)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import PYTHON, ROOT


@pytest.mark.slow
def test_bench_loop_quick(tmp_path):
    proc = subprocess.run(
        [PYTHON, "scripts/bench_loop.py", "--quick", "--repeats", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads((tmp_path / "loop.json").read_text())
    assert payload["ratio"] > 0 and payload["setting"]["cycles"] == 5
    assert "ratio al_bench / hand-written" in (tmp_path / "loop.md").read_text()


@pytest.mark.slow
def test_bench_strategies_quick(tmp_path):
    proc = subprocess.run(
        [PYTHON, "scripts/bench_strategies.py", "--quick", "--cycles", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads((tmp_path / "strategies.json").read_text())["runs"]
    assert [r["strategy"] for r in runs] == ["random", "entropy", "coreset"]
    assert all(r["state"] == "finished" and r["select_s"] >= 0 for r in runs)
    assert (
        "| coreset |" in (tmp_path / "strategies.md").read_text() and (tmp_path / "strategies.png").exists()
    )
