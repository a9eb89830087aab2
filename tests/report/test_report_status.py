"""``python -m al_bench.report DIR --status``: one line per run, what needs attention first, exit 0."""

from __future__ import annotations

import os
import time

from al_bench.report.__main__ import main
from al_bench.report.status import status_lines
from tests.report.test_report_cli import fake_sweep, write_run


def test_status_lines_order_cycles_and_messages(tmp_path):
    fake_sweep(tmp_path)  # entropy seed 2 failed after 2 of 4 cycles; random seed 0 has no status.json
    running = write_run(tmp_path, "bald", 0, [0.5, 0.6], status={"state": "running", "cycles_done": 2})
    (running / "config.yaml").write_text("budget:\n  name: digits\n  cycles: 3\n")
    old = tmp_path / "digits" / "mlp" / "random" / "seed=0"
    (old / "config.yaml").write_text("budget:\n  name: digits\n  cycles: 3\n")
    now = os.stat(running / "status.json").st_mtime + 3 * 3600
    lines = status_lines(tmp_path, now=now)
    assert lines[0].split() == ["state", "cycles", "run", "message"]
    assert lines[1].split()[:3] == ["failed", "2/4", "digits/mlp/entropy/seed=2"]
    assert lines[1].endswith("CUDA out of memory")
    assert lines[2].split()[:3] == ["running", "2/4", "digits/mlp/bald/seed=0"]
    assert lines[2].endswith("status.json written 3.0 h ago")
    old_line = next(line for line in lines if "random/seed=0" in line)
    assert old_line.split()[:2] == ["finished", "4/4"]  # from curve.csv rows and budget.cycles + 1
    assert old_line.endswith("no status.json (older run), assumed finished")
    assert len(lines) == 1 + 7 + 1 and lines[-1] == "7 runs: 1 failed, 1 running, 5 finished"


def test_cli_status_prints_and_exits_0_without_writing(tmp_path, capsys):
    fake_sweep(tmp_path)
    assert main([str(tmp_path), "--status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "6 runs: 1 failed, 5 finished" and not (tmp_path / "report").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--status"]) == 0
    assert capsys.readouterr().out.startswith("no runs under")
    assert main([str(tmp_path / "missing"), "--status"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_age_of_a_fresh_running_run(tmp_path):
    write_run(tmp_path, "bald", 0, [0.5], status={"state": "running", "cycles_done": 1, "cycles_total": 4})
    line = status_lines(tmp_path, now=time.time())[1]
    assert line.split()[:2] == ["running", "1/4"] and line.endswith("status.json written < 1 min ago")
