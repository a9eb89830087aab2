"""State that survives: an unreadable state.pt gives one line and keeps the CSV files, a foreign state.pt
never runs code, ``recover=true`` rebuilds a stateless cold-start run exactly, one process per run dir."""

from __future__ import annotations

import io
import json
import pickle
import socket
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig

import al_bench.loop as loop
from al_bench.errors import RunLockedError, UnreadableStateError
from al_bench.loop import run
from al_bench.pool import ActivePool
from al_bench.results import RunLock, RunStore
from al_bench.strategies.learned import CEAL
from tests.conftest import PYTHON, ROOT, TINY

RECOVER = "recover=true"
TIMING = ["train_s", "select_s", "eval_s"]
VIEWS = ("curve.csv", "selected.csv")


def crashed_run(make_cfg, monkeypatch, *overrides: str, at: int = 1) -> DictConfig:
    """The config of a run killed in cycle ``at``: cycles 0..at-1 are in state.pt and the CSV views."""
    cfg = make_cfg(*overrides)
    real_run_cycle = loop.run_cycle

    def crash(cfg_, data, pool, strategy, cycle, net, *rest):
        if cycle == at:
            raise KeyboardInterrupt("simulated kill")
        return real_run_cycle(cfg_, data, pool, strategy, cycle, net, *rest)

    with monkeypatch.context() as m:
        m.setattr(loop, "run_cycle", crash)
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
    return cfg


def truncate_state(cfg: DictConfig) -> Path:
    state = Path(cfg.paths.run_dir) / "state.pt"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    return state


def views(cfg: DictConfig) -> dict[str, bytes]:
    return {name: (Path(cfg.paths.run_dir) / name).read_bytes() for name in VIEWS}


class CreatesMarker:
    """A pickle that, when unpickled without weights_only, creates the file ``path`` (stands in for worse)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


# ---- the state format -----------------------------------------------------------------------------------
def test_state_round_trips_through_weights_only_load(tmp_path):
    pool = ActivePool(np.arange(2, 10), size=12)
    pool.label(np.array([3, 5]), cycle=0)
    ceal = CEAL()
    ceal._pseudo = (np.array([7, 8], dtype=np.int64), np.array([1, 0], dtype=np.int64))
    state = {
        "next_cycle": 1,
        "pool": pool.state_dict(),
        "rows": [{"strategy": "ceal", "cycle": np.int64(0), "test_acc": np.float64(0.5), "val_acc": np.nan}],
        "strategy": ceal.state_dict(),
        "net": {"w": torch.randn(3, 2), "pair": (1, 2.5)},
    }
    store = RunStore(tmp_path)
    store.save_state(state)
    raw = torch.load(tmp_path / "state.pt", weights_only=True)  # no allow-listing needed
    assert raw["format"] == 2
    back = store.load_state()

    restored_pool, restored_ceal = ActivePool(np.arange(2, 10), size=12), CEAL()
    restored_pool.load_state_dict(back["pool"])
    restored_ceal.load_state_dict(back["strategy"])
    assert back["pool"]["labeled_cycle"].dtype == np.int32
    np.testing.assert_array_equal(restored_pool.labeled_cycle, pool.labeled_cycle)
    for got, want in zip(restored_ceal.pseudo_labels(), ceal.pseudo_labels()):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    row = back["rows"][0]
    assert type(row["cycle"]) is int and type(row["test_acc"]) is float and np.isnan(row["val_acc"])
    assert torch.equal(back["net"]["w"], state["net"]["w"]) and back["net"]["pair"] == (1, 2.5)


def test_state_refuses_objects_it_could_not_load_safely(tmp_path):
    with pytest.raises(TypeError, match="cannot hold a CreatesMarker"):
        RunStore(tmp_path).save_state({"next_cycle": 0, "pool": {}, "rows": [CreatesMarker(tmp_path)]})


# ---- unreadable state -----------------------------------------------------------------------------------
def test_truncated_state_is_one_line_and_keeps_the_csv_files(make_cfg, monkeypatch):
    cfg = crashed_run(make_cfg, monkeypatch, "budget.cycles=3", at=2)
    state = truncate_state(cfg)
    before = views(cfg)
    with pytest.raises(UnreadableStateError) as info:
        run(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert f"{state} cannot be read (truncated or corrupt" in message
    assert "curve.csv (2 finished cycles: 0-1) and selected.csv are left untouched" in message
    assert "overwrite=true redoes the run from scratch" in message
    assert "recover=true resumes after cycle 1 from curve.csv and selected.csv" in message
    assert views(cfg) == before
    status = RunStore(cfg.paths.run_dir).read_status()
    assert status["state"] == "failed" and status["message"] == message

    redone = run(make_cfg("budget.cycles=3", "overwrite=true"))
    assert redone.status == "finished" and redone.curve["cycle"].tolist() == [0, 1, 2, 3]


def test_foreign_state_never_runs_code(make_cfg, monkeypatch, tmp_path):
    cfg = crashed_run(make_cfg, monkeypatch)
    store = RunStore(cfg.paths.run_dir)
    old_format = {k: v for k, v in store.load_state().items() if k != "format"}  # numpy arrays, as before
    marker = tmp_path / "marker"
    evil = {"next_cycle": 1, "rows": [], "pool": CreatesMarker(marker)}
    evil_zip, evil_plain, old = io.BytesIO(), io.BytesIO(), io.BytesIO()
    torch.save(evil, evil_zip)
    pickle.dump(evil, evil_plain)
    torch.save(old_format, old)
    before = views(cfg)
    for payload in (evil_zip, evil_plain, old):
        (store.dir / "state.pt").write_bytes(payload.getvalue())
        with pytest.raises(UnreadableStateError, match="written by an older al_bench or not a state file"):
            run(cfg)
        assert not marker.exists(), "the pickle's code ran"
        assert views(cfg) == before


# ---- recover=true ---------------------------------------------------------------------------------------
def test_recover_gives_the_uninterrupted_curve_and_selections(make_cfg, monkeypatch, tmp_path):
    common = ["strategy=entropy", "budget.cycles=3"]
    reference = run(make_cfg(*common, f"paths.run_dir={tmp_path}/ref"))
    cfg = crashed_run(make_cfg, monkeypatch, *common, f"paths.run_dir={tmp_path}/crash", at=2)
    truncate_state(cfg)

    recovered = run(make_cfg(*common, f"paths.run_dir={tmp_path}/crash", RECOVER))
    assert recovered.status == "finished"
    pd.testing.assert_frame_equal(recovered.curve.drop(columns=TIMING), reference.curve.drop(columns=TIMING))
    pd.testing.assert_frame_equal(
        pd.read_csv(recovered.run_dir / "selected.csv"), pd.read_csv(reference.run_dir / "selected.csv")
    )
    assert RunStore(recovered.run_dir).load_state()["next_cycle"] == 4, "state.pt is whole again"


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("trainer.warm_start=true", "trainer.warm_start=true needs the network weights"),
        ("strategy=ceal", "strategy ceal carries state between cycles"),
    ],
)
def test_recover_is_refused_when_state_pt_held_more(make_cfg, monkeypatch, override, why):
    cfg = crashed_run(make_cfg, monkeypatch, override)
    truncate_state(cfg)
    before = views(cfg)
    with pytest.raises(UnreadableStateError) as plain:
        run(cfg)
    assert "resumes after cycle" not in str(plain.value), "recovery is not offered"
    with pytest.raises(UnreadableStateError) as info:
        run(make_cfg(override, RECOVER))
    message = str(info.value)
    assert "\n" not in message and f"recover=true cannot rebuild state.pt: {why}" in message
    assert "curve.csv (1 finished cycle: 0) and selected.csv are left untouched" in message
    assert "overwrite=true redoes the run from scratch" in message
    assert views(cfg) == before


def test_recover_is_refused_when_the_csv_files_disagree(make_cfg, monkeypatch):
    cfg = crashed_run(make_cfg, monkeypatch, "budget.cycles=3", at=2)
    truncate_state(cfg)
    selected = Path(cfg.paths.run_dir) / "selected.csv"
    frame = pd.read_csv(selected)
    selected.write_text(frame[frame["cycle"] < 2].to_csv(index=False))  # the last selection is lost
    before = views(cfg)
    with pytest.raises(UnreadableStateError, match="selected.csv lacks the selections of cycle 2"):
        run(make_cfg("budget.cycles=3", RECOVER))
    assert views(cfg) == before


# ---- one process per run directory ----------------------------------------------------------------------
HOLD = "import sys, time; from al_bench.results import RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(300)"  # noqa: E501


def test_held_lock_stops_a_second_run_and_dies_with_its_holder(make_cfg, monkeypatch):
    cfg = crashed_run(make_cfg, monkeypatch)
    run_dir = Path(cfg.paths.run_dir)
    before = views(cfg)
    holder = subprocess.Popen([PYTHON, "-c", HOLD, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for overrides in ((), ("overwrite=true",)):
            with pytest.raises(RunLockedError) as info:
                run(make_cfg(*overrides))
            message = str(info.value)
            assert "\n" not in message and f"pid {holder.pid} on {socket.gethostname()}, started" in message
            assert views(cfg) == before, "nothing read or cleared under another process's lock"
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((run_dir / RunLock.NAME).read_text())["pid"] == holder.pid, "a dead holder's file"
    resumed = run(cfg)
    assert resumed.status == "finished" and resumed.curve["cycle"].tolist() == [0, 1, 2]
    assert (run_dir / RunLock.NAME).read_text() == "", "released at the end"


def test_stale_lock_file_is_taken_over(make_cfg):
    cfg = make_cfg()
    dead = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_file = Path(cfg.paths.run_dir) / RunLock.NAME
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"}))
    assert run(cfg).status == "finished"


def test_lock_is_released_when_a_run_fails(make_cfg, monkeypatch):
    cfg = crashed_run(make_cfg, monkeypatch)
    lock = RunLock(cfg.paths.run_dir)
    assert (lock.path).read_text() == "", "a released lock names no holder"
    lock.acquire()  # another open file description: refused if the crashed run still held it
    lock.release()


# ---- the command line -----------------------------------------------------------------------------------
def test_cli_unreadable_state_is_one_line_without_traceback(make_cfg, monkeypatch, tmp_path):
    cfg = crashed_run(make_cfg, monkeypatch)
    truncate_state(cfg)
    overrides = [*TINY, f"paths.results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/hydra"]
    overrides.append("variant=")  # the directory crashed_run used: no variant suffix
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be read (truncated or corrupt" in lines[0], proc.stderr
