"""Each report figure on a synthetic sweep (3 settings x 5 strategies x 3 seeds): the panels it must have."""

from __future__ import annotations

import pytest

from al_bench.report.plots import (
    diff_to_random_figure,
    learning_curves_figure,
    plot_diff_to_random,
    plot_learning_curves,
    plot_time_per_cycle,
    time_per_cycle_figure,
)
from al_bench.report.rank_plots import (
    aubc_ranking_figure,
    critical_difference_figure,
    plot_aubc_ranking,
    plot_critical_difference,
)
from al_bench.report.stats import diff_to_random, rank_test, setting_aubc
from tests.report.report_frames import synthetic_curves

FAMILY_TITLES = [
    "uncertainty (one network)",
    "diversity / representativeness",
    "hybrid (uncertainty + diversity)",
]
SETTINGS = ["d0 / mlp / b", "d1 / mlp / b", "d2 / mlp / b"]


@pytest.fixture(scope="module")
def frame():
    return synthetic_curves(n_settings=3)


def visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_learning_curves_one_panel_per_family_and_setting_with_random_in_each(frame):
    axes = visible(learning_curves_figure(frame))
    assert (
        len(axes) == 3 * 3
    )  # uncertainty (entropy, margin), diversity (coreset), hybrid (badge); no random panel
    titles = [ax.get_title() for ax in axes]
    assert titles == [f"{family}\n{setting}" for setting in SETTINGS for family in FAMILY_TITLES]
    for ax in axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels[0] == "random"
    assert [line.get_label() for line in axes[0].get_lines()] == ["random", "entropy", "margin"]
    # panels of one setting share their y range
    assert len({ax.get_ylim() for ax in axes[:3]}) == 1


def test_diff_to_random_has_zero_line_and_no_random_curve(frame):
    axes = visible(diff_to_random_figure(diff_to_random(frame)))
    assert len(axes) == 9
    labels = [line.get_label() for line in axes[2].get_lines()]
    assert labels == ["random (0)", "badge"]
    lo, hi = axes[2].get_ylim()
    assert lo < 0.0 < hi


def test_time_per_cycle_one_panel_per_setting_slowest_on_top(frame):
    axes = visible(time_per_cycle_figure(frame))
    assert [ax.get_title() for ax in axes] == SETTINGS
    ticks = [t.get_text() for t in axes[0].get_yticklabels()]
    assert ticks == ["random", "coreset", "margin", "entropy", "badge"]  # train_s grows with the gain
    assert len(axes[0].patches) == 2 * 5  # train + select bar per strategy


def test_aubc_ranking_best_at_the_top(frame):
    axes = visible(aubc_ranking_figure(setting_aubc(frame)))
    assert [ax.get_title() for ax in axes] == [f"{s} (strategy (seeds))" for s in SETTINGS]
    ticks = [t.get_text() for t in axes[0].get_yticklabels()]
    assert ticks == ["random (3)", "coreset (3)", "margin (3)", "entropy (3)", "badge (3)"]  # y grows upwards


def test_critical_difference_diagram(frame):
    fig = critical_difference_figure(rank_test(frame))
    (ax,) = visible(fig)
    assert "Friedman p = 0.0174" in ax.get_title()
    texts = {t.get_text() for t in ax.texts}
    assert "badge (1.00)" in texts and "(5.00) random" in texts


@pytest.mark.slow  # rasterising five figures: ~10 s
def test_every_plot_function_writes_a_png(frame, tmp_path):
    table, diff = setting_aubc(frame), diff_to_random(frame)
    written = [
        plot_learning_curves(frame, tmp_path / "a.png"),
        plot_diff_to_random(diff, tmp_path / "b.png"),
        plot_time_per_cycle(frame, tmp_path / "c.png"),
        plot_aubc_ranking(table, tmp_path / "d.png"),
        plot_critical_difference(rank_test(frame), tmp_path / "e.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
