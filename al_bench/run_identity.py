"""What makes two runs the same run: the run directory's variant suffix and the resume-time config check.

A run directory is ``<results_dir>/<dataset>/<model>/<strategy>[/<variant>]/seed=<seed>``. ``variant`` names
the command-line overrides that change the run's config against the same dataset / model / strategy /
experiment with defaults everywhere else (``budget.query_size=100,model.dropout=0.2``), so a sweep over any
option lands in distinct directories without hand-made paths. Overrides that only change where or how
verbosely a run writes (:data:`VOLATILE_KEYS`, ``hydra...``) never enter it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: config keys that do not change a run's results (ignored when checking that a resume matches, never in a
#: variant). ``variant`` is derived from the overrides and already in the directory name; the fit engines
#: give the same weights bit for bit (tests/core/test_plain_fit.py, tests/core/test_linear_step.py).
VOLATILE_KEYS = (
    "overwrite", "recover", "paths", "logger", "trainer.progress_bar", "verbose", "diagnostics", "threads",
    "variant", "trainer.engine",
)  # fmt: skip
#: groups and keys that already name the run directory (or name a protocol with its own results_dir).
IDENTITY_KEYS = ("dataset", "model", "strategy", "seed", "experiment")
#: the longest readable variant; longer ones keep a prefix and end with a hash of the whole.
MAX_VARIANT_CHARS = 80
_SAFE = re.compile(r"[^A-Za-z0-9._=+\-@,]")
#: a "," that starts the next ``key=value`` (or ``~key``) item, not one inside a list value
_ITEM_START = re.compile(r",(?=~|[A-Za-z_][\w.@/]*=)")


def parse_override(text: str) -> tuple[str, str, str]:
    """``"++budget.query_size=100"`` -> (prefix ``"++"``, key ``"budget.query_size"``, value ``"100"``).

    Group selections use ``/`` in keys (``trainer/optimizer=sgd``); deletions (``~key``) have value ``""``.
    """
    prefix = re.match(r"^(\+\+|\+|~)?", text).group(0)  # type: ignore[union-attr]
    body = text[len(prefix) :]
    key, _, value = body.partition("=")
    return prefix, key.strip(), value.strip()


def is_volatile(key: str) -> bool:
    """True for keys (or groups) that never change results: paths, logging, verbosity, hydra's own."""
    dotted = key.replace("/", ".")
    if dotted.startswith("hydra") or dotted.split(".")[0] in IDENTITY_KEYS and "." not in dotted:
        return True
    return any(dotted == v or dotted.startswith(v + ".") for v in VOLATILE_KEYS)


def variant_name(overrides: Iterable[str], changes_config: Callable[[str, str, str], bool]) -> str:
    """The variant of a run from its command-line ``overrides``: the result-affecting ones, sorted, joined
    with ``,`` (``"budget.query_size=100,model.dropout=0.2"``); "" = the default configuration.

    ``changes_config(prefix, key, value)`` says whether an override changes the config at all (an override
    equal to the default does not). :func:`variant_dirname` makes it a directory name.
    """
    kept = []
    for text in overrides:
        prefix, key, value = parse_override(text)
        if not key or is_volatile(key) or not changes_config(prefix, key, value):
            continue
        kept.append(f"~{key}" if prefix == "~" else f"{key}={value}")
    return ",".join(sorted(kept))


def variant_dirname(variant: str) -> str:
    """``variant`` as one path component: unsafe characters become ``-``; when anything was replaced or the
    name is longer than :data:`MAX_VARIANT_CHARS`, a readable prefix plus 8 hex digits of the exact text."""
    safe = _SAFE.sub("-", variant)
    if safe != variant or len(safe) > MAX_VARIANT_CHARS:
        digest = hashlib.sha256(variant.encode()).hexdigest()[:8]
        safe = f"{safe[: MAX_VARIANT_CHARS - 9].rstrip(',')}-{digest}"
    return safe


def parse_variant(variant: str) -> dict[str, str]:
    """``"budget.query_size=100,model.hidden=[64,64]"`` -> {key: value} (for reports)."""
    out: dict[str, str] = {}
    for part in _ITEM_START.split(str(variant or "")):
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    return out


def comparable(cfg: DictConfig | dict) -> dict:
    """The config as a plain dict without :data:`VOLATILE_KEYS` (what must match for a resume)."""
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(c, dict)
    for key in VOLATILE_KEYS:
        parts = key.split(".")
        node: Any = c
        for p in parts[:-1]:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return c


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between a stored config and the current one.

    Only keys present in both count: a key that al_bench added after the stored run was made (or removed
    since) is not a difference, so finished results keep resuming across versions.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) & set(new), key=str):
            out += config_differences(old[k], new[k], f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]
