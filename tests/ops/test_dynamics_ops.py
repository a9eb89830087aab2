"""Label dispersion and forgetting counts on hand-made prediction histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_bench.ops.dynamics import forgetting_counts, label_dispersion


def _dispersion_loop(history: np.ndarray, mode_window: int | None, denominator: str) -> np.ndarray:
    """Per-row reference: Python loop with np.bincount."""
    n, t = history.shape
    out = np.empty(n)
    for r in range(n):
        window = history[r] if mode_window is None else history[r, -mode_window:]
        mode = np.bincount(window).argmax()
        f = (history[r] == mode).sum()
        out[r] = 1 - f / (t if denominator == "epochs" else t + 1)
    return out


def test_dispersion_by_hand():
    history = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [2, 2, 2, 1], [0, 1, 2, 3]])
    got = label_dispersion(history)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.5, 0.25, 0.75]))
    assert got.dtype == torch.float32


def test_dispersion_denominator_epochs_plus_one():
    history = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1]])
    got = label_dispersion(history, denominator="epochs_plus_one")
    torch.testing.assert_close(got, torch.tensor([1 - 4 / 5, 1 - 2 / 5]))


def test_dispersion_mode_window_counts_over_all_epochs():
    # mode over all epochs is 0 (3 of 5); over the last 2 epochs it is 1, matched in 2 of 5 epochs
    history = torch.tensor([[0, 0, 0, 1, 1]])
    torch.testing.assert_close(label_dispersion(history), torch.tensor([1 - 3 / 5]))
    torch.testing.assert_close(label_dispersion(history, mode_window=2), torch.tensor([1 - 2 / 5]))
    torch.testing.assert_close(
        label_dispersion(history, mode_window=2, denominator="epochs_plus_one"), torch.tensor([1 - 2 / 6])
    )
    # a window at least T long is the paper formula
    torch.testing.assert_close(label_dispersion(history, mode_window=9), label_dispersion(history))


def test_dispersion_mode_window_tie_goes_to_smallest_label():
    history = torch.tensor([[1, 1, 1, 2, 0]])  # last 2 epochs tie between 0 and 2: c* = 0, seen once
    torch.testing.assert_close(label_dispersion(history, mode_window=2), torch.tensor([1 - 1 / 5]))


@pytest.mark.parametrize("mode_window", [None, 1, 3])
@pytest.mark.parametrize("denominator", ["epochs", "epochs_plus_one"])
def test_dispersion_matches_loop_reference(mode_window, denominator):
    rng = np.random.default_rng(0)
    history = rng.integers(0, 7, size=(200, 9))
    got = label_dispersion(torch.from_numpy(history).to(torch.uint8), mode_window, denominator)
    np.testing.assert_allclose(got.numpy(), _dispersion_loop(history, mode_window, denominator), rtol=1e-6)


def test_dispersion_row_chunks_change_nothing():
    from al_bench.ops import dynamics

    rng = np.random.default_rng(1)
    history = torch.from_numpy(rng.integers(0, 5, size=(50, 6)))
    full = dynamics._mode_counts(history)
    chunked = dynamics._mode_counts(history, chunk_elements=7)
    assert torch.equal(full[0], chunked[0]) and torch.equal(full[1], chunked[1])


def test_dispersion_bad_input():
    with pytest.raises(ValueError):
        label_dispersion(torch.zeros(3, 0, dtype=torch.long))
    with pytest.raises(ValueError):
        label_dispersion(torch.zeros(3, 2, dtype=torch.long), denominator="t")
    with pytest.raises(ValueError):
        label_dispersion(torch.zeros(3, 2, dtype=torch.long), mode_window=0)
    assert label_dispersion(torch.zeros(0, 4, dtype=torch.long)).shape == (0,)


def test_forgetting_counts_by_hand():
    history = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1], [2, 2, 1, 1], [0, 1, 2, 3]], dtype=torch.uint8)
    got = forgetting_counts(history)
    assert got.tolist() == [0, 3, 1, 3]
    assert got.dtype == torch.int64
    assert forgetting_counts(torch.zeros(4, 1, dtype=torch.long)).tolist() == [0, 0, 0, 0]
