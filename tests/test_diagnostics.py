"""Accuracy per label-dispersion bin (Bengar et al. Fig. 11) and its plot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.diagnostics import dispersion_accuracy_bins, plot_dispersion_accuracy


def test_bins_by_hand():
    dispersion = torch.tensor([0.0, 0.05, 0.1, 0.55, 0.99, 1.0])
    correct = torch.tensor([True, False, True, False, True, True])
    df = dispersion_accuracy_bins(dispersion, correct, n_bins=4)
    assert list(df.columns) == ["bin", "lo", "hi", "count", "accuracy"]
    np.testing.assert_allclose(df["lo"], [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(df["hi"], [0.25, 0.5, 0.75, 1.0])
    assert df["count"].tolist() == [3, 0, 1, 2]  # 1.0 falls in the last bin
    assert df["accuracy"][0] == pytest.approx(2 / 3)
    assert np.isnan(df["accuracy"][1])
    assert df["accuracy"][2] == 0.0 and df["accuracy"][3] == 1.0
    assert df["count"].sum() == len(dispersion)


def test_bins_reject_bad_input():
    with pytest.raises(ValueError):
        dispersion_accuracy_bins(np.zeros(3), np.zeros(2, dtype=bool))
    with pytest.raises(ValueError):
        dispersion_accuracy_bins(np.zeros(3), np.zeros(3, dtype=bool), n_bins=0)


def test_plot_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 0.8, size=500)
    df = dispersion_accuracy_bins(d, rng.uniform(size=500) > d, n_bins=10)
    path = plot_dispersion_accuracy(df, tmp_path / "sub" / "dispersion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
