"""A run's files (curve.csv, selected.csv, config.yaml, status.json, resume state), written atomically, and
the lock that keeps a second process out of a run directory."""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
import tempfile
import warnings
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from al_bench import distributed
from al_bench.errors import RunLockedError, UnreadableStateError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded against a second process
    fcntl = None  # type: ignore[assignment]

CURVE_COLUMNS = [
    "dataset", "model", "strategy", "budget", "scenario", "variant", "init_strategy", "seed", "cycle",
    "n_labeled", "n_pseudo", "n_val", "test_acc", "test_loss", "balanced_acc", "worst_class_acc", "macro_f1",
    "val_acc", "val_loss", "train_acc", "epochs", "train_s", "select_s", "eval_s", "proxy_train_s",
    "proxy_test_acc", "n_ood", "n_noisy",
    "labeled_hist",
]  # fmt: skip
#: curve.csv columns that hold names (read back as strings even when a name looks like a number).
NAME_COLUMNS = ("dataset", "model", "strategy", "budget", "scenario", "variant", "init_strategy")
#: version of state.pt's layout; a file without it was written by an older al_bench (a pickle with numpy).
STATE_FORMAT = 2
_NUMPY = "__numpy__"  # tags a tensor that was a numpy array, so that loading gives the array back


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
    warm-start weights); the CSV files are views of it rewritten after every cycle (for a cold-start run of a
    stateless strategy they hold all of it: :meth:`read_finished`). ``state.pt`` holds only dicts, lists,
    numbers, strings and tensors, and is loaded with ``weights_only=True``: a results directory from someone
    else cannot run code. Under DDP only rank 0 writes.
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

    def lock(self) -> RunLock:
        return RunLock(self.dir)

    def load_state(self) -> dict[str, Any]:
        """The resume state as :meth:`save_state` got it (numpy arrays included). Raises
        UnreadableStateError (one line: why) for a truncated or corrupt file, or one that is not a state
        file of this al_bench; never runs code from the file."""
        import torch

        path = self.dir / self.STATE
        foreign = f"{path} cannot be read (written by an older al_bench or not a state file)"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. torch's note on a foreign pickle protocol
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # weights_only refused a global (numpy, or anything else)
            if str(e).startswith("Weights only load failed"):
                raise UnreadableStateError(foreign) from e
            raise UnreadableStateError(f"{path} cannot be read (truncated or corrupt: {_short(e)})") from e
        except Exception as e:  # a cut-off zip, an empty file, garbage: whatever the parser stumbles on
            raise UnreadableStateError(f"{path} cannot be read (truncated or corrupt: {_short(e)})") from e
        if not (isinstance(state, dict) and state.get("format") == STATE_FORMAT):
            raise UnreadableStateError(foreign)
        if not {"next_cycle", "pool", "rows"} <= state.keys():
            raise UnreadableStateError(f"{path} cannot be read (incomplete: no next_cycle, pool or rows)")
        return _decode(state)

    def save_state(self, state: dict[str, Any]) -> None:
        """Persist the resume state, then the CSV views of it (each file atomically). ``state`` may hold
        dicts, lists, tuples, None, numbers, strings, numpy arrays and scalars, and torch tensors."""
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        buf = _to_bytes(_encode({"format": STATE_FORMAT, **state}))
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

    def read_finished(self) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """What the CSV views say about the finished cycles: curve rows (cycles 0..k-1, values as written)
        and selected.csv (``index``, ``cycle``). Raises ValueError (why) when either file is missing or
        unreadable, or when they disagree (labels per cycle)."""
        rows = self.read_curve_rows()
        try:
            sel = pd.read_csv(self.selected_path)
            sel = sel[["index", "cycle"]].astype(np.int64)
        except FileNotFoundError:
            raise ValueError("selected.csv is missing") from None
        except (OSError, ValueError, KeyError) as e:  # pandas' parser errors are ValueErrors
            raise ValueError(f"selected.csv cannot be read ({_short(e)})") from None
        if (sel["index"] < 0).any() or (sel["cycle"] < 0).any() or sel["index"].duplicated().any():
            raise ValueError("selected.csv holds negative or repeated indices")
        if len(sel) and sel["cycle"].max() > len(rows):
            raise ValueError(
                f"selected.csv has selections for cycle {sel['cycle'].max()}, after curve.csv ends"
            )
        for row in rows:
            n = int((sel["cycle"] <= row["cycle"]).sum())
            if n != row.get("n_labeled"):
                raise ValueError(
                    f"selected.csv does not match curve.csv (cycle {row['cycle']}: {row.get('n_labeled')} "
                    f"labels in curve.csv, {n} in selected.csv)"
                )
        return rows, sel

    def read_curve_rows(self) -> list[dict[str, Any]]:
        """curve.csv's rows as Python values (cycles 0..k-1); raises ValueError (why) if that is not it."""
        try:
            frame = pd.read_csv(
                self.curve_path,
                dtype={c: str for c in NAME_COLUMNS},
                keep_default_na=False,  # only an empty field is NaN: a name stays a name
                na_values=[""],
            )
        except FileNotFoundError:
            raise ValueError("curve.csv is missing") from None
        except (OSError, ValueError, KeyError) as e:  # pandas' parser errors are ValueErrors
            raise ValueError(f"curve.csv cannot be read ({_short(e)})") from None
        if "cycle" not in frame.columns or "n_labeled" not in frame.columns:
            raise ValueError("curve.csv has no cycle or n_labeled column")
        if frame.empty:
            raise ValueError("curve.csv holds no finished cycle")
        if frame["cycle"].tolist() != list(range(len(frame))):
            raise ValueError(f"curve.csv has cycles {frame['cycle'].tolist()} instead of 0, 1, ...")
        return [{k: _python(v) for k, v in row.items()} for row in frame.to_dict("records")]

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
        """status.json as a dict ({} when missing or unreadable: it only mirrors state.pt)."""
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def clear(self) -> None:
        """Remove this run's own files (only those al_bench writes), for ``overwrite=true``."""
        if not distributed.is_main():  # under DDP only rank 0 writes
            return
        for name in (self.STATE, "curve.csv", "selected.csv", "config.yaml", "status.json"):
            (self.dir / name).unlink(missing_ok=True)
        for extra in self.dir.glob("diagnostics_*"):
            extra.unlink()


class RunLock:
    """An exclusive lock on a run directory: ``fcntl.flock`` on ``<run_dir>/run.lock``, held from before a
    run reads or writes its files until it ends (also on failure).

    The OS drops a flock when its holder exits, however it exits, so a lock file left by a dead process is
    taken over; the file's text (pid, host, start time) only names the holder to a refused process. Only
    rank 0 locks (the other DDP ranks are its own children). Without fcntl (Windows) nothing is locked.
    """

    NAME = "run.lock"

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / self.NAME
        self._fd: int | None = None

    def check(self) -> None:
        """Raise RunLockedError if another process holds the lock now; creates nothing."""
        if fcntl is None or not distributed.is_main() or not self.path.exists():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            if not _flock(fd, fcntl.LOCK_SH):
                raise RunLockedError(self._held_message())
        finally:
            os.close(fd)  # drops the shared lock

    def acquire(self) -> None:
        """Take the lock (creating the run directory) or raise RunLockedError naming the holder."""
        if fcntl is None or not distributed.is_main() or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _flock(fd, fcntl.LOCK_EX):
            os.close(fd)
            raise RunLockedError(self._held_message())
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (the file stays: deleting it would let two processes lock two different files)."""
        if self._fd is None or fcntl is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a free lock names no holder
            fcntl.flock(fd, fcntl.LOCK_UN)  # explicit: a forked child may share the descriptor
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            holder = {}
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
            if holder
            else "a process that has not written its pid yet"
        )
        return (
            f"{self.path.parent} is in use by another al_bench run ({who}): wait for it to end or stop it "
            f"(one process per run directory; its lock file is {self.path})"
        )


def _flock(fd: int, op: int) -> bool:
    """Non-blocking flock: True when taken, False when another process holds a conflicting lock."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # a file system without locks:
            return True  # run unguarded rather than not at all
        raise
    return True


def _encode(obj: Any) -> Any:
    """``obj`` in types that ``torch.load(weights_only=True)`` accepts: a numpy array becomes a tagged
    tensor, a numpy scalar a Python number; dicts, lists and tuples are converted item by item."""
    import torch

    if isinstance(obj, np.ndarray):
        return {_NUMPY: torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_encode(v) for v in obj)
    if obj is None or isinstance(obj, bool | int | float | str | torch.Tensor):
        return obj
    raise TypeError(f"state.pt cannot hold a {type(obj).__name__}: use numbers, strings, arrays or tensors")


def _decode(obj: Any) -> Any:
    """Inverse of :func:`_encode` (numpy scalars come back as Python numbers)."""
    import torch

    if isinstance(obj, dict):
        if obj.keys() == {_NUMPY} and isinstance(obj[_NUMPY], torch.Tensor):
            return obj[_NUMPY].numpy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v) for v in obj)
    return obj


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _short(error: BaseException) -> str:
    """An exception's first sentence on one line (its type name when it says nothing)."""
    text = " ".join(str(error).split())
    text = text.split(". ")[0].rstrip(".")
    return text[:160] or type(error).__name__


def _to_bytes(obj: Any) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
