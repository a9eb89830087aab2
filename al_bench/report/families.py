"""Strategy families: which panel of the small-multiple figures a strategy is drawn in.

The grouping follows the query-strategy taxonomy of Zhan et al., "A Comparative Survey of Deep Active
Learning" (arXiv 2203.13450, 2022): uncertainty-based, representative / diversity-based and combined
(hybrid) strategies. Its uncertainty group is split by where the uncertainty comes from (one network, a
Bayesian posterior, a committee); two groups the survey lists apart from those are kept apart here too:
strategies that learn the acquisition (VAAL, LL4AL, CAL, MAL), and strategies that read the training process
(learning dynamics) or a sample's influence on the model (ISAL, RALIF, and EGL as expected model change).
Keys are the names of ``configs/strategy/*.yaml``; a name the table does not list (a strategy of an older
result) belongs to ``"other"``.
"""

from __future__ import annotations

from collections.abc import Iterable

BASELINE_FAMILY = "random"
OTHER = "other"

#: family -> (title shown on a panel, strategy names); the order is the order of the panels
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "random": ("random (baseline)", ("random",)),
    "uncertainty": (
        "uncertainty (one network)",
        ("least_confidence", "margin", "entropy", "ceal"),
    ),
    "bayesian": (
        "Bayesian (MC-dropout posterior)",
        ("bald", "batchbald", "mc_entropy", "mean_std", "variation_ratio", "epig"),
    ),
    "committee": ("committee / ensemble", ("consensus_entropy", "kl_divergence", "vote_entropy")),
    "diversity": ("diversity / representativeness", ("coreset", "typiclust", "probcover")),
    "hybrid": (
        "hybrid (uncertainty + diversity)",
        (
            "badge",
            "bait",
            "diverse_minibatch",
            "cluster_margin",
            "alfamix",
            "dropquery",
            "stochastic",
            "suggestive_annotation",
        ),
    ),
    "learned": ("learned acquisition", ("vaal", "ll4al", "cal", "mal")),
    "dynamics": (
        "training dynamics / influence",
        ("forgetting", "label_dispersion", "isal", "ralif", "egl"),
    ),
    OTHER: ("other (not in the family table)", ()),
}

_FAMILY_OF: dict[str, str] = {name: family for family, (_, names) in FAMILIES.items() for name in names}


def family_of(strategy: str) -> str:
    """The family key of a strategy name; ``"other"`` for a name the table does not list."""
    return _FAMILY_OF.get(str(strategy), OTHER)


def family_title(family: str) -> str:
    """The panel title of a family key (the key itself when unknown)."""
    return FAMILIES[family][0] if family in FAMILIES else family


def group_by_family(strategies: Iterable[str]) -> dict[str, list[str]]:
    """{family: sorted names} for the families that have at least one of ``strategies``, in panel order.

    The baseline family (random) is included when random is among the strategies; the figures draw random in
    every panel anyway, so callers usually skip that entry.
    """
    groups: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for name in sorted(set(map(str, strategies))):
        groups[family_of(name)].append(name)
    return {family: names for family, names in groups.items() if names}


def family_colors() -> dict[str, tuple]:
    """A fixed colour per family key (tab10), random black: colours that mean the same in every figure."""
    import matplotlib

    palette = list(matplotlib.colormaps["tab10"].colors)
    colors = {
        family: palette[i % len(palette)] for i, family in enumerate(f for f in FAMILIES if f != "random")
    }
    colors["random"] = (0.0, 0.0, 0.0, 1.0)
    colors[OTHER] = (0.5, 0.5, 0.5, 1.0)
    return colors
