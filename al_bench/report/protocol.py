"""The protocol of each setting, read back from its runs' ``config.yaml``: what a reader needs to judge it.

Per setting: the main choices (dataset, model, budget sizes, epochs, optimizer, validation labels), any config
value that differs between the setting's runs (beyond strategy and seed: a sign of a mixed sweep), and each
strategy's options that differ from its shipped ``configs/strategy/<name>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from al_bench.report.aggregate import setting_keys, setting_label

#: (dotted config key, label) of the choices every protocol line shows when the config has them
MAIN_KEYS: tuple[tuple[str, str], ...] = (
    ("dataset.name", "dataset"),
    ("scenario.name", "scenario"),
    ("dataset.val_size", "validation labels"),
    ("model.name", "model"),
    ("model.dropout", "dropout"),
    ("budget.init_size", "initial labels"),
    ("budget.init_balanced", "class-balanced initial set"),
    ("budget.query_size", "query size"),
    ("budget.cycles", "cycles"),
    ("budget.pool_subset", "candidates scored per cycle"),
    ("trainer.max_epochs", "epochs"),
    ("trainer.batch_size", "batch size"),
    ("trainer.optimizer._target_", "optimizer"),
    ("trainer.optimizer.lr", "learning rate"),
    ("trainer.optimizer.weight_decay", "weight decay"),
    ("trainer.scheduler", "scheduler"),
    ("trainer.scheduler._target_", "scheduler"),
    ("trainer.augment", "augmentation"),
    ("trainer.warm_start", "warm start"),
    ("trainer.early_stopping_patience", "early-stopping patience"),
)
#: config keys that never describe the experiment (where files go, console output, threads)
IGNORED_PREFIXES: tuple[str, ...] = (
    "paths.", "seed", "strategy.", "variant", "overwrite", "verbose", "threads", "diagnostics", "recover",
    "dataset.data_dir", "dataset.fallback_dir", "dataset.download", "dataset.verify", "logger.",
    "trainer.progress_bar", "trainer.accelerator", "trainer.devices",
)  # fmt: skip


@dataclass
class Protocol:
    """One setting's protocol: ``main`` [(label, value)], ``varies`` {key: values seen}, ``strategy_options``
    {strategy: "key=value, ..." of the options that differ from the shipped yaml}, runs without a config."""

    label: str
    seeds: list[int]
    n_runs: int
    main: list[tuple[str, str]] = field(default_factory=list)
    varies: dict[str, list[str]] = field(default_factory=dict)
    strategy_options: dict[str, str] = field(default_factory=dict)
    missing_configs: int = 0


def protocols(frame: pd.DataFrame, configs_dir: str | Path | None = None) -> list[Protocol]:
    """One Protocol per setting of a curve frame (``load_curves``: needs its ``run_dir`` column).

    ``configs_dir``: the config tree holding ``strategy/<name>.yaml`` (default: the one al_bench ships).
    """
    shipped = _shipped_strategy_configs(configs_dir)
    keys = setting_keys(frame)
    out = []
    for setting, g in frame.groupby(keys, sort=True):
        runs = g.drop_duplicates("run_dir")[["run_dir", "strategy", "seed"]]
        configs = {row.run_dir: _flat_config(Path(row.run_dir) / "config.yaml") for row in runs.itertuples()}
        found = [c for c in configs.values() if c is not None]
        protocol = Protocol(
            label=setting_label(setting, keys),
            seeds=sorted(int(s) for s in runs["seed"].unique()),
            n_runs=len(runs),
            missing_configs=len(configs) - len(found),
        )
        relevant = [{k: v for k, v in c.items() if not k.startswith(IGNORED_PREFIXES)} for c in found]
        scenario_keys = sorted(
            {k for c in relevant for k in c if k.startswith("scenario.")} - {"scenario.name"}
        )
        for key, label in [*MAIN_KEYS, *((k, k) for k in scenario_keys)]:
            values = sorted({c[key] for c in relevant if key in c})
            if values:
                protocol.main.append((label, " | ".join(_short(key, v) for v in values)))
        all_keys = sorted({k for c in relevant for k in c})
        for key in all_keys:
            values = sorted({c.get(key, "(absent)") for c in relevant})
            if len(values) > 1:
                protocol.varies[key] = values
        for row in runs.sort_values(["strategy", "seed"]).drop_duplicates("strategy").itertuples():
            config = configs[row.run_dir]
            if config is not None:
                changed = _changed_options(config, shipped.get(str(row.strategy)))
                if changed:
                    protocol.strategy_options[str(row.strategy)] = changed
        out.append(protocol)
    return out


def _changed_options(config: dict[str, str], shipped: dict[str, str] | None) -> str:
    """``key=value, ...`` of the run's strategy options (``strategy.*`` but name and _target_) that differ
    from the shipped yaml; every option when the strategy has no shipped yaml."""
    options = {
        k[len("strategy.") :]: v
        for k, v in config.items()
        if k.startswith("strategy.") and k not in ("strategy.name", "strategy._target_")
    }
    if shipped is not None:
        options = {k: v for k, v in options.items() if shipped.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


def _shipped_strategy_configs(configs_dir: str | Path | None) -> dict[str, dict[str, str]]:
    """{strategy name: its shipped options, flattened and stringified like a run's config}."""
    if configs_dir is None:
        import al_bench

        configs_dir = Path(al_bench.__file__).resolve().parent / "configs"
    out = {}
    for path in sorted(Path(configs_dir).glob("strategy/*.yaml")):
        flat = _flat_config(path)
        if flat is not None:
            out[path.stem] = flat
    return out


def _flat_config(path: Path) -> dict[str, str] | None:
    """A yaml file as {dotted key: value as text}; None when absent or unreadable."""
    if not path.exists():
        return None
    try:
        import yaml

        config = yaml.safe_load(path.read_text())
    except Exception:  # noqa: BLE001 - an unreadable config only costs its protocol line
        return None
    if not isinstance(config, dict):
        return None
    if not config:
        return {}
    flat: dict[str, str] = {}
    _flatten(config, "", flat)
    return flat


def _flatten(value: object, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    else:
        out[prefix[:-1]] = "null" if value is None else str(value)


def _short(key: str, value: str) -> str:
    """``torch.optim.Adam`` -> ``Adam`` for class paths; other values as they are."""
    return value.rsplit(".", 1)[-1] if key.endswith("_target_") else value
