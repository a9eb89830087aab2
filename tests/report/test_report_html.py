"""A fake sweep's whole report with two variants: files, index.html, summary.md, --metric, --open."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from al_bench.errors import ALBenchError
from al_bench.report.__main__ import main, open_in_browser
from al_bench.report.aggregate import load_curves
from al_bench.report.metrics import metric_columns, select_metric
from al_bench.report.writer import ReportOptions, compute_report

VARIANT = "model.dropout=0.2"
GAINS = {"random": 0.0, "bald": 0.02, "entropy": 0.04}
FIGURES = [
    "learning_curves.png", "diff_to_random.png", "aubc_ranking.png", "critical_difference.png",
    "time_per_cycle.png", "penalty_matrix.png",
]  # fmt: skip


def write_variant_run(
    root: Path, strategy: str, seed: int, variant: str, acc: list[float], status: dict
) -> Path:
    """A run as the loop writes it, variant level in the path, with curve.csv, status.json and config.yaml."""
    run_dir = root / "digits" / "mlp" / strategy / variant / f"seed={seed}" if variant else None
    run_dir = run_dir or root / "digits" / "mlp" / strategy / f"seed={seed}"
    run_dir.mkdir(parents=True)
    k = len(acc)
    pd.DataFrame(
        {
            "dataset": "digits",
            "model": "mlp",
            "strategy": strategy,
            "budget": "digits",
            "scenario": "clean",
            "variant": variant,
            "seed": seed,
            "cycle": range(k),
            "n_labeled": [20 + 10 * c for c in range(k)],
            "test_acc": acc,
            "macro_f1": [a - 0.05 for a in acc],
            "train_s": 1.0,
            "select_s": 0.2,
        }  # fmt: skip
    ).to_csv(run_dir / "curve.csv", index=False)
    (run_dir / "status.json").write_text(json.dumps(status))
    strategy_cfg = {"name": strategy, "_target_": f"x.{strategy}"} | (
        {"n_samples": 5} if strategy == "bald" else {}
    )
    config = {
        "seed": seed,
        "paths": {"run_dir": str(run_dir)},
        "dataset": {"name": "digits", "val_size": 0},
        "model": {"name": "mlp", "dropout": 0.2 if variant else 0.0},
        "strategy": strategy_cfg,
        "budget": {"name": "digits", "init_size": 20, "query_size": 10, "cycles": 3},
        "trainer": {
            "max_epochs": 5,
            "batch_size": 16,
            "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001},
        },
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_dir


def variant_sweep(root: Path) -> Path:
    """2 settings (default, model.dropout=0.2) x 3 strategies x 2 seeds x 4 cycles; one entropy run failed."""
    for variant in ("", VARIANT):
        for strategy, gain in GAINS.items():
            for seed in range(2):
                acc = [0.5 + 0.01 * seed] + [0.5 + 0.01 * seed + (0.05 + gain) * c for c in (1, 2, 3)]
                status = {"state": "finished", "message": "", "cycles_done": 4, "cycles_total": 4}
                if variant and strategy == "entropy" and seed == 1:
                    acc = acc[:2]
                    status = {
                        "state": "failed",
                        "message": "CUDA out of memory",
                        "cycles_done": 2,
                        "cycles_total": 4,
                    }
                write_variant_run(root, strategy, seed, variant, acc, status)
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    results = variant_sweep(tmp_path_factory.mktemp("sweep") / "results")
    assert main([str(results)]) == 0
    return results / "report"


@pytest.mark.slow  # the module's report: six figures, ~8 s
def test_report_writes_every_file(report):
    for name in [*FIGURES, "summary.md", "summary.csv", "summary.tex", "aubc.csv", "ranks.csv", "index.html"]:
        assert (report / name).stat().st_size > 0, name
    ranks = pd.read_csv(report / "ranks.csv")
    assert list(ranks["strategy"]) == ["entropy", "bald", "random"] and (ranks["blocks"] == "settings").all()
    assert ranks["n_blocks"].iloc[0] == 2
    aubc = pd.read_csv(report / "aubc.csv", keep_default_na=False)
    assert set(aubc["variant"]) == {"", VARIANT}
    entropy = aubc[(aubc["strategy"] == "entropy") & (aubc["variant"] == VARIANT)]
    assert entropy["n_seeds"].tolist() == [1]  # the failed run has no complete curve


@pytest.mark.slow  # the module's report: six figures, ~8 s
def test_index_html_is_self_contained_with_figures_tables_protocol_and_failures(report):
    page = (report / "index.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert not re.search(r"(src|href)=\"(https?:)?//|<link|@import|url\(", page)  # nothing from the network
    assert page.count('<table class="sortable">') >= 6 and 'addEventListener("click"' in page
    # setting labels parse the variant; protocol from config.yaml; strategy options that differ from the yaml
    assert "digits / mlp / digits / model.dropout=0.2" in page
    protocol = page.split('id="protocol"')[1].split("</section>")[0]
    assert "initial labels" in protocol and ">20<" in protocol and "Adam" in protocol
    assert "n_samples=5" in protocol  # bald's shipped yaml says 20
    runs = page.split('id="runs"')[1].split("</section>")[0]
    assert "entropy/model.dropout=0.2/seed=1" in runs and "CUDA out of memory" in runs and "2/4" in runs
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert "Basis: 2 setting(s)" in summary and "Friedman" in summary
    assert "over 2 settings (differing in model.dropout;" in summary


@pytest.mark.slow  # the module's report: six figures, ~8 s
def test_summary_markdown_has_claims_figures_and_ranks(report):
    text = (report / "summary.md").read_text()
    assert "## Summary" in text and "- Basis: 2 setting(s), 1-2 complete seeds" in text
    for name in FIGURES[:-1]:
        assert f"]({name})" in text, name
    assert "| entropy | uncertainty | 1.00 |" in text  # average rank table
    assert "### digits / mlp / digits / model.dropout=0.2" in text
    assert "Metric: test_acc." in text


def test_metric_choice(tmp_path):
    frame = load_curves(variant_sweep(tmp_path / "results"))
    assert {"test_acc", "macro_f1"} <= set(metric_columns(frame))
    assert not {"seed", "n_labeled", "train_s", "select_s"} & set(metric_columns(frame))
    with pytest.raises(ALBenchError, match="is not a column of curve.csv; rank by one of: test_acc"):
        select_metric(frame, "nope")
    with pytest.raises(ALBenchError, match="train_s is not a higher-is-better score"):
        select_metric(frame, "train_s")
    with pytest.raises(ALBenchError, match="val_acc has no values"):
        select_metric(frame.assign(val_acc=np.nan), "val_acc")
    counts = frame.assign(n_ood=0, n_noisy=1, labeled_hist="10|10")  # scenario columns are no metrics
    assert metric_columns(counts) == metric_columns(frame)
    older = frame.assign(macro_f1=np.where(frame["strategy"] == "bald", np.nan, frame["macro_f1"]))
    assert set(select_metric(older, "macro_f1")["strategy"]) == {"random", "entropy"}
    data = compute_report(tmp_path / "results", tmp_path / "out", ReportOptions(metric="macro_f1"))
    by_metric = data.aubc.set_index(["variant", "strategy"])["aubc_mean"]
    # random: mean over the budget axis of 0.505 + 0.05 c, c = 0..3, is 0.58; macro_f1 = acc - 0.05
    assert by_metric[("", "random")] == pytest.approx(0.58 - 0.05)


def test_cli_metric_error_is_one_line(tmp_path, capsys):
    variant_sweep(tmp_path / "results")
    assert main([str(tmp_path / "results"), "--metric", "test_loss"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--metric test_loss" in err


def test_open_without_a_display_says_where_the_file_is(tmp_path, monkeypatch):
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda uri: opened.append(uri) or True)
    assert (
        open_in_browser(page) == f"no display or web browser here: open {page.as_uri()} on a machine with one"
    )
    assert opened == []
    monkeypatch.setenv("DISPLAY", ":0")
    assert open_in_browser(page) == f"opened {page.as_uri()}" and opened == [page.as_uri()]
