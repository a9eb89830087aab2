"""Collect every run under a results directory into tidy frames: learning curves and run status.

A run directory is ``<results_dir>/.../<dataset>/<model>/<strategy>/seed=<seed>/`` holding ``curve.csv``
(one row per cycle), ``status.json`` (absent in older runs), ``config.yaml`` and ``selected.csv``.
A *setting* is one ``(dataset, model, budget, scenario, variant)``: strategies are compared within a setting,
never across. ``scenario`` (pool realism: "clean", "imbalanced", ...) and ``variant`` (the non-default
overrides that also name the run directory, ``<dataset>/<model>/<strategy>/<variant>/seed=<seed>``, e.g.
"budget.query_size=100,model.dropout=0.2"; "" for the default configuration) load as "clean" and "" from
curve.csv files written before those columns existed.
``n_val`` is the number of validation labels a run read (curve.csv files written before that column existed
load with 0): validation labels are labels, and the report can count them (``--count-validation``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from al_bench.errors import ALBenchError
from al_bench.run_identity import parse_variant  # the variant's own grammar: "key=value,key=[a,b],~key"

SETTING_KEYS: tuple[str, ...] = ("dataset", "model", "budget", "scenario", "variant")
RUN_KEYS: tuple[str, ...] = (*SETTING_KEYS, "strategy", "seed")
TEXT_COLUMNS: tuple[str, ...] = ("dataset", "model", "budget", "strategy")
INT_COLUMNS: tuple[str, ...] = ("seed", "cycle", "n_labeled")
REQUIRED_COLUMNS: tuple[str, ...] = (*TEXT_COLUMNS, *INT_COLUMNS, "test_acc")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "test_loss", "val_acc", "train_s", "select_s", "balanced_acc", "worst_class_acc", "macro_f1",
)  # fmt: skip
#: integer columns with a default for files that lack them (older runs) or leave them empty
DEFAULTED_COLUMNS: dict[str, int] = {"n_val": 0, "n_ood": 0, "n_noisy": 0}
#: setting columns with a default for files that lack them (older runs) or leave them empty
DEFAULTED_TEXT: dict[str, str] = {"scenario": "clean", "variant": ""}
REPORT_DIRNAME = "report"
STATUS_COLUMNS: tuple[str, ...] = (
    "run_dir", *RUN_KEYS, "state", "message", "cycles_done", "cycles_total", "has_status",
)  # fmt: skip


def setting_keys(frame: pd.DataFrame) -> list[str]:
    """The setting columns ``frame`` has, in SETTING_KEYS order (a hand-made frame may lack some)."""
    return [k for k in SETTING_KEYS if k in frame.columns]


def setting_label(setting: dict | tuple | list, keys: tuple[str, ...] | list[str] = SETTING_KEYS) -> str:
    """``digits / mlp / digits`` plus the scenario when not "clean" and the variant's overrides when any.

    ``setting``: a dict {key: value} or the values in ``keys`` order (a groupby key). The variant is shown as
    ``budget.query_size=100, model.dropout=0.2``.
    """
    values = dict(setting) if isinstance(setting, dict) else dict(zip(keys, setting))
    parts = [str(values[k]) for k in ("dataset", "model", "budget") if k in values]
    scenario = values.get("scenario", DEFAULTED_TEXT["scenario"])
    if scenario and scenario != DEFAULTED_TEXT["scenario"]:
        parts.append(str(scenario))
    overrides = parse_variant(values.get("variant") or "")
    if overrides:
        parts.append(", ".join(f"{k}={v}" if v else k for k, v in overrides.items()))
    return " / ".join(parts)


def settings_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per setting of a curve frame with the variant parsed into one column per swept key.

    Columns: the setting keys, ``label`` (:func:`setting_label`), then every key that any variant overrides
    (its value, "" where a setting keeps the default). Sorted like every groupby over the setting keys.
    """
    keys = setting_keys(frame)
    settings = frame[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    settings["label"] = [
        setting_label(dict(zip(keys, row))) for row in settings[keys].itertuples(index=False)
    ]
    parsed = [parse_variant(v) for v in settings["variant"]] if "variant" in settings else []
    for key in dict.fromkeys(k for p in parsed for k in p):
        settings[key] = [p.get(key, "") for p in parsed]
    return settings


def load_curves(results_dir: str | Path, exclude: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Concatenate every ``curve.csv`` under ``results_dir`` into one tidy frame (one row per run x cycle).

    Skips ``results_dir/report`` and any directory in ``exclude``. Columns: the required ones
    (dataset, model, budget, strategy, seed, cycle, n_labeled, test_acc), scenario and variant (str, "clean"
    and "" where a file lacks them), the optional ones (test_loss,
    val_acc, train_s, select_s; NaN where a file lacks them), ``n_val`` (int, 0 where a file lacks it), any
    extra column the files carry, and ``run_dir`` (absolute path, str). Sorted by run then cycle.
    Raises ALBenchError naming the file for a malformed curve, naming both run dirs when the same
    (dataset, model, budget, strategy, seed) appears twice, and when the directory is missing or has no curve.
    """
    root = _existing_dir(results_dir)
    paths = _find(root, "curve.csv", exclude)
    if not paths:
        raise ALBenchError(f"no curve.csv under {root}: nothing to report (is this a results directory?)")
    frames = [_read_curve(path) for path in paths]
    frame = pd.concat(frames, ignore_index=True, sort=False)
    if frame.empty:
        raise ALBenchError(
            f"the {len(paths)} curve.csv file(s) under {root} have no rows yet: no cycle finished"
        )
    _check_duplicate_runs(frame)
    ordered = [*REQUIRED_COLUMNS, *DEFAULTED_TEXT, *OPTIONAL_COLUMNS, *DEFAULTED_COLUMNS]
    columns = ordered + [c for c in frame.columns if c not in ordered and c != "run_dir"] + ["run_dir"]
    return frame[columns].sort_values([*RUN_KEYS, "cycle"], kind="stable").reset_index(drop=True)


def load_status(results_dir: str | Path, exclude: Iterable[str | Path] = ()) -> pd.DataFrame:
    """One row per run directory (a directory holding ``curve.csv`` or ``status.json``) with its state.

    Columns: run_dir, dataset, model, budget, strategy, seed, state, message, cycles_done, cycles_total,
    has_status. ``state`` is status.json's ("finished" | "running" | "failed"); a run without status.json
    (older runs) counts as "finished"; an unreadable status.json gives state "unknown" with the reason.
    Run identity comes from the first row of curve.csv, else from the path (``.../<dataset>/<model>/
    <strategy>/seed=<seed>``) and ``config.yaml`` (budget); unknown fields are empty / NaN.
    """
    root = _existing_dir(results_dir)
    dirs = sorted({p.parent for name in ("curve.csv", "status.json") for p in _find(root, name, exclude)})
    rows = [_status_row(run_dir) for run_dir in dirs]
    frame = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    for column in ("seed", "cycles_done", "cycles_total"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame


def _existing_dir(results_dir: str | Path) -> Path:
    root = Path(results_dir).expanduser().resolve()
    if not root.exists():
        raise ALBenchError(f"results directory {root} does not exist")
    if not root.is_dir():
        raise ALBenchError(f"{root} is not a directory: pass the results directory of a run or sweep")
    return root


def _find(root: Path, name: str, exclude: Iterable[str | Path]) -> list[Path]:
    """Files called ``name`` under ``root``, outside ``root/report`` and the ``exclude`` directories.

    An excluded directory that contains ``root`` itself (``--out`` one level above the runs, as
    ``results/digits`` for ``results/digits/runs``) hides nothing.
    """
    excluded = (Path(e).expanduser().resolve() for e in exclude)
    skipped = [root / REPORT_DIRNAME, *(e for e in excluded if not root.resolve().is_relative_to(e))]
    found = []
    for path in sorted(root.rglob(name)):
        if path.is_file() and not any(path.is_relative_to(s) for s in skipped):
            found.append(path)
    return found


def _read_curve(path: Path) -> pd.DataFrame:
    """Read and validate one curve.csv; every problem is an ALBenchError that names the file."""
    try:
        frame = pd.read_csv(
            path, dtype={c: str for c in (*TEXT_COLUMNS, *DEFAULTED_TEXT)}, keep_default_na=True
        )
    except pd.errors.EmptyDataError:
        raise ALBenchError(
            f"{path}: empty file, expected a header row with {', '.join(REQUIRED_COLUMNS)}"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ALBenchError(f"{path}: not a readable CSV ({first_line})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ALBenchError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED_COLUMNS)}"
        )
    for column in TEXT_COLUMNS:
        if frame[column].isna().any():
            raise ALBenchError(f"{path}: column {column!r} has empty values")
        frame[column] = frame[column].astype(str)
    for column in (*INT_COLUMNS, "test_acc"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            raise ALBenchError(f"{path}: column {column!r} has empty or non-numeric values")
        if column in INT_COLUMNS:
            if not np.all(np.equal(np.mod(values, 1), 0)):
                raise ALBenchError(f"{path}: column {column!r} must hold integers")
            values = values.astype(np.int64)
        frame[column] = values
    for column in OPTIONAL_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else np.nan
    missing_text = [c for c in DEFAULTED_TEXT if c not in frame.columns]
    from_config = _setting_from_config(path.parent / "config.yaml") if missing_text else {}
    for column, default in DEFAULTED_TEXT.items():
        if column in frame.columns:
            frame[column] = frame[column].fillna(default).astype(str)
        else:
            frame[column] = from_config.get(column, default)
    for column, default in DEFAULTED_COLUMNS.items():
        values = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else None
        if values is not None and (values.dropna() % 1 != 0).any():
            raise ALBenchError(f"{path}: column {column!r} must hold integers")
        frame[column] = default if values is None else values.fillna(default).astype(np.int64)
    for column in ("cycle", "n_labeled"):
        if frame[column].duplicated().any():
            raise ALBenchError(f"{path}: the same {column} appears on two rows")
    if frame[list(RUN_KEYS)].drop_duplicates().shape[0] > 1:
        raise ALBenchError(f"{path}: rows of more than one run ({', '.join(RUN_KEYS)}) in one file")
    frame["run_dir"] = str(path.parent)
    return frame


def _check_duplicate_runs(frame: pd.DataFrame) -> None:
    runs = frame[[*RUN_KEYS, "run_dir"]].drop_duplicates()
    clash = runs[runs.duplicated(list(RUN_KEYS), keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        dirs = clash[(clash[list(RUN_KEYS)] == first[list(RUN_KEYS)]).all(axis=1)]["run_dir"].tolist()
        key = ", ".join(f"{k}={first[k]}" for k in RUN_KEYS)
        raise ALBenchError(
            f"the same run ({key}) is in {' and '.join(dirs)}: report one sweep at a time or remove the copy"
        )


def _status_row(run_dir: Path) -> dict:
    row: dict = dict.fromkeys(STATUS_COLUMNS, None) | {"run_dir": str(run_dir), "message": ""}
    row |= _identity(run_dir)
    status_path = run_dir / "status.json"
    if not status_path.exists():
        return row | {
            "state": "finished",
            "message": "no status.json (older run), assumed finished",
            "has_status": False,
        }
    row["has_status"] = True
    try:
        status = json.loads(status_path.read_text())
        if not isinstance(status, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return row | {"state": "unknown", "message": f"unreadable status.json: {err}"}
    row["state"] = str(status.get("state", "unknown"))
    row["message"] = " ".join(str(status.get("message") or "").split())  # one line
    row["cycles_done"] = status.get("cycles_done")
    row["cycles_total"] = status.get("cycles_total")
    return row


def _identity(run_dir: Path) -> dict:
    """The run keys of a run: curve.csv's first row, else config.yaml and the path.

    The path is ``.../<dataset>/<model>/<strategy>[/<variant>]/seed=<seed>``; a variant level is recognised
    when config.yaml names the strategy one level above it.
    """
    curve = run_dir / "curve.csv"
    if curve.exists():
        try:
            text = {c: str for c in (*TEXT_COLUMNS, *DEFAULTED_TEXT)}
            first = pd.read_csv(curve, nrows=1, dtype=text, keep_default_na=False)
            if len(first) and all(k in first.columns for k in RUN_KEYS if k not in DEFAULTED_TEXT):
                row = {k: first[k].iloc[0] for k in RUN_KEYS if k in first.columns}
                for key, default in DEFAULTED_TEXT.items():
                    row[key] = row.get(key) or default
                return row
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            pass
    config = _read_config(run_dir / "config.yaml")
    ident: dict = dict(DEFAULTED_TEXT) | _path_keys(run_dir, config)
    for key in ("dataset", "model", "strategy", "budget", "scenario"):
        name = _name(config.get(key))
        if name is not None:
            ident[key] = name
    if config.get("variant"):
        ident["variant"] = str(config["variant"])  # the exact text; the directory name may be shortened
    return ident


def _path_keys(run_dir: Path, config: dict) -> dict[str, str]:
    """dataset, model, strategy, seed and the variant level of ``.../<dataset>/<model>/<strategy>[/<variant>]/
    seed=<seed>`` (a variant level is recognised when ``config`` names the strategy one level above it)."""
    parts = run_dir.parts
    if len(parts) < 4 or not parts[-1].startswith("seed="):
        return {}
    has_variant = len(parts) >= 5 and _name(config.get("strategy")) == parts[-3]
    head = parts[-5:-1] if has_variant else parts[-4:-1]
    keys = {"dataset": head[0], "model": head[1], "strategy": head[2], "seed": parts[-1][len("seed=") :]}
    return keys | ({"variant": parts[-2]} if has_variant else {})


def _setting_from_config(path: Path) -> dict[str, str]:
    """scenario and variant of a run whose curve.csv predates those columns, from its config.yaml if it has
    them (``scenario: {name: ...}``, ``variant: ...``), else the variant level of its directory; {} otherwise.
    """
    config = _read_config(path)
    out = {k: v for k, v in _path_keys(path.parent, config).items() if k == "variant"}
    scenario = _name(config.get("scenario"))
    if scenario:
        out["scenario"] = scenario
    if config.get("variant"):
        out["variant"] = str(config["variant"])
    return out


def _name(group: object) -> str | None:
    """A config group's name: ``{name: x, ...}`` or a bare ``x``; None when absent."""
    if isinstance(group, dict):
        group = group.get("name")
    return None if group is None else str(group)


def _read_config(path: Path) -> dict:
    """A run's config.yaml as a dict ({} when absent or unreadable: it only adds names)."""
    if not path.exists():
        return {}
    try:
        import yaml

        config = yaml.safe_load(path.read_text())
    except Exception:  # noqa: BLE001 - a config we cannot read only costs us some names
        return {}
    return config if isinstance(config, dict) else {}
