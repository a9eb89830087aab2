"""Consistent MC dropout: pass t is one function of every input (batchbald_redux's ConsistentMCDropout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.models.base import ALNet
from al_bench.models.mlp import MLP
from al_bench.ops.bayesian import bald
from al_bench.pool import ActivePool
from al_bench.posteriors.mc_dropout import MCDropoutPosterior, dropout_layers, mc_dropout_probs
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.bayesian import BALD, BatchBALD

D, C = 6, 3


def _data(x: torch.Tensor, eval_batch_size: int = 7) -> ALDataModule:
    y = torch.zeros(len(x), dtype=torch.long)
    return ALDataModule(ArrayDataset("t", x, y, x[:2], y[:2], C), eval_batch_size=eval_batch_size)


def _mlp(seed: int = 0, dropout: float = 0.5) -> MLP:
    torch.manual_seed(seed)
    return MLP((D,), C, hidden=(16, 16), dropout=dropout)


def _posterior(model: ALNet, t: int = 8, seed: int = 0) -> MCDropoutPosterior:
    return MCDropoutPosterior(model, t, torch.Generator().manual_seed(seed))


class ConvTail(ALNet):
    """A conv trunk, then Dropout2d + batch norm + conv in the tail: channel masks, frozen batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.rest = nn.Sequential(
            nn.Dropout2d(0.5), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
        )  # fmt: skip
        self.feature_dim, self.num_classes = 4, C
        self.head = nn.Linear(4, C)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)


def test_identical_inputs_get_identical_outputs_pass_by_pass_in_one_batch_and_across_batches() -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(5, D, generator=g)
    x = torch.cat([base, base, base, base])  # 20 rows: copies 5 apart, batches of 7 split them
    probs = _posterior(_mlp()).probs(_data(x), np.arange(20))
    assert probs.shape == (20, 8, C)
    for copy in (1, 2, 3):
        torch.testing.assert_close(probs[5 * copy : 5 * copy + 5], probs[:5], rtol=0, atol=1e-6)


def test_masks_differ_between_passes_and_rows_sum_to_one() -> None:
    x = torch.randn(4, D, generator=torch.Generator().manual_seed(2))
    probs = _posterior(_mlp(), t=16).probs(_data(x), np.arange(4))
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, 16))
    distinct = {tuple(np.round(p.numpy(), 5)) for p in probs[0]}
    assert len(distinct) > 8


def test_the_same_functions_serve_any_index_set_in_any_order() -> None:
    x = torch.randn(30, D, generator=torch.Generator().manual_seed(3))
    data = _data(x)
    post = _posterior(_mlp())
    labeled = post.probs(data, np.array([3, 17, 25]))  # first call draws the masks
    everything = post.probs(data, np.arange(30))
    torch.testing.assert_close(labeled, everything[[3, 17, 25]], rtol=0, atol=1e-6)
    one_by_one = torch.cat([post.probs_of(x[i : i + 1]) for i in range(30)])
    torch.testing.assert_close(one_by_one, everything, rtol=0, atol=1e-6)


def test_seeded_masks_reproduce_and_leave_the_global_rng_alone() -> None:
    x = torch.randn(12, D, generator=torch.Generator().manual_seed(4))
    data, model = _data(x), _mlp()
    torch.manual_seed(99)
    before = torch.rand(3)
    torch.manual_seed(99)
    a = mc_dropout_probs(model, data, np.arange(12), 6, generator_seed=5)
    after = torch.rand(3)
    b = mc_dropout_probs(model, data, np.arange(12), 6, generator_seed=5)
    c = mc_dropout_probs(model, data, np.arange(12), 6, generator_seed=6)
    torch.testing.assert_close(before, after)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_channel_masks_batch_norm_in_eval_and_training_mode_restored() -> None:
    torch.manual_seed(0)
    model = ConvTail()
    model.train()
    x = torch.randn(9, 1, 5, 5, generator=torch.Generator().manual_seed(5))
    post = _posterior(model, t=4)
    probs = post.probs(_data(x, eval_batch_size=4), np.arange(9))
    assert model.training and model.rest[1].training  # mode restored afterwards
    assert post._masks[0].shape == (4, 4, 1, 1)  # Dropout2d: one draw per channel and pass
    assert post._masks[1].shape == (4, 4)  # Dropout on [B, 4] features: elementwise
    # batch norm frozen: a sample's outputs do not depend on the batch it came in
    torch.testing.assert_close(post.probs_of(x[2:3])[0], probs[2], rtol=0, atol=1e-6)


def test_p_zero_and_trunk_dropout_are_refused() -> None:
    with pytest.raises(ValueError, match="no"):
        _posterior(_mlp(dropout=0.0))

    class TrunkDropout(ConvTail):
        def trunk(self, x: torch.Tensor) -> torch.Tensor:
            return self.rest[0](self.stem(x))

    model = TrunkDropout()
    with pytest.raises(ValueError, match="trunk"):
        _posterior(model).probs_of(torch.zeros(2, 1, 5, 5))
    assert len(dropout_layers(model)) == 2


def test_probabilities_match_a_per_pass_loop_with_explicit_masks() -> None:
    """Reference: for each pass t, run the whole MLP with its masks applied by hand."""
    model = _mlp(dropout=0.4)
    x = torch.randn(10, D, generator=torch.Generator().manual_seed(6))
    post = _posterior(model, t=5)
    probs = post.probs(_data(x), np.arange(10))
    m0, m1 = post._masks[0], post._masks[1]  # [T, 16] each, inverted-dropout scaled
    model.eval()
    with torch.no_grad():
        for t in range(5):
            h = model.first(x) * m0[t]
            h = torch.relu(model.rest[1](h)) * m1[t]
            torch.testing.assert_close(model.head(h).softmax(-1), probs[:, t], rtol=0, atol=1e-6)
    values = torch.unique(torch.cat([m0.flatten(), m1.flatten()]))
    assert torch.allclose(values, torch.tensor([0.0, 1 / (1 - 0.4)]))


def _duplicate_pool_context(budget: int) -> SelectionContext:
    """A 40-point pool: 10 near-copies of the point with the highest BALD score, 30 others.

    The head is scaled up so that each MC function is confident and the functions disagree (epistemic
    uncertainty, as in a trained network): then a second copy of a point tells almost nothing new.
    """
    g = torch.Generator().manual_seed(7)
    others = torch.randn(30, D, generator=g) * 2
    model = _mlp(seed=3, dropout=0.5)
    with torch.no_grad():
        model.head.weight.mul_(8.0)
    probe = mc_dropout_probs(model, _data(others), np.arange(30), 200, generator_seed=0)
    best = others[int(bald(probe).argmax())]
    near_copies = best + 1e-3 * torch.randn(10, D, generator=g)  # near-duplicates, not bit-identical
    x = torch.cat([near_copies, others[:30]])
    y = torch.zeros(len(x), dtype=torch.long)
    data = ALDataModule(ArrayDataset("dup", x, y, x[:2], y[:2], C), eval_batch_size=16)
    pool = ActivePool(data.pool_indices, size=len(x))
    return SelectionContext(model, data, pool, budget, 0, np.random.default_rng(0))


def test_batchbald_never_takes_two_copies_where_top_k_bald_does() -> None:
    copies = set(range(10))
    bald_picks = BALD(n_samples=50).select(_duplicate_pool_context(5))
    assert len(copies & set(bald_picks.tolist())) >= 2  # the copies share about one (top) score
    for seed in range(3):
        ctx = _duplicate_pool_context(5)
        ctx.rng = np.random.default_rng(seed)
        picks = BatchBALD(n_samples=50, num_joint_samples=20000).select(ctx)
        assert len(copies & set(picks.tolist())) <= 1, picks


def test_large_trunk_outputs_go_through_the_tail_in_chunks(monkeypatch) -> None:
    from al_bench.posteriors import mc_dropout

    x = torch.randn(9, D, generator=torch.Generator().manual_seed(8))
    model = _mlp()
    whole = _posterior(model).probs_of(x)
    monkeypatch.setattr(mc_dropout, "MAX_TAIL_ELEMENTS", 8 * 16 * 2)  # 2 rows of [T=8, 16] per chunk
    torch.testing.assert_close(_posterior(model).probs_of(x), whole, rtol=0, atol=1e-6)


def test_selection_context_scores_any_index_set_with_the_candidates_functions() -> None:
    ctx = _duplicate_pool_context(5)
    candidates = ctx.mc_probs(12)
    some = ctx.candidates[[3, 0, 17]]
    torch.testing.assert_close(ctx.mc_probs(12, indices=some), candidates[[3, 0, 17]], rtol=0, atol=1e-6)
    assert ctx.mc_posterior(12) is ctx.mc_posterior(12)  # drawn once per selection
