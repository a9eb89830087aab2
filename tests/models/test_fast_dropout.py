"""FastDropout: nn.Dropout's distribution and semantics with PCG64 masks on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.models.base import enable_dropout_only, has_dropout
from al_bench.models.fast_dropout import FastDropout, keep_mask
from al_bench.models.feature_head import FeatureHead
from al_bench.posteriors.mc_dropout import mc_dropout_probs


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.8])
def test_mask_keeps_one_minus_p_and_scales_by_its_inverse(p):
    torch.manual_seed(0)
    out = FastDropout(p).train()(torch.ones(400, 1000))
    kept = out != 0
    # 400,000 Bernoulli(1 - p) draws: the kept fraction is within 5 standard errors of 1 - p
    se = (p * (1 - p) / kept.numel()) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * se
    torch.testing.assert_close(out[kept], torch.full((int(kept.sum()),), 1 / (1 - p)))
    assert abs(out.mean().item() - 1.0) < 5 * se / (1 - p)  # inverted dropout: unbiased


@pytest.mark.parametrize("seed", [0, 12345, 2**62 - 1])
def test_keep_mask_is_numpys_float32_uniforms_compared_with_p(seed):
    """The raw-word comparison equals the definition, 1[u >= p] with u = Generator(PCG64(seed)).random(
    dtype=float32), for p on a grid, odd sizes (a last half word) and p at float32 rounding edges."""
    ps = [*np.arange(0.01, 1.0, 0.01), 1 / 3, 2**-24, 1 - 2**-24, 0.1 + 1e-9, 0.7 - 1e-9]
    for shape in [(37, 129), (1,), (3, 5, 7)]:
        u = np.random.Generator(np.random.PCG64(seed)).random(shape, dtype=np.float32)
        for p in ps:
            expected = torch.from_numpy(u.copy()).ge_(float(p)).numpy()  # FastDropout's first definition
            for dtype in (np.float32, np.float64):
                got = keep_mask(shape, float(p), seed, dtype)
                assert got.dtype == dtype and np.array_equal(got, expected.astype(dtype)), (p, shape)


def test_mask_entries_are_independent_across_rows_and_columns():
    torch.manual_seed(1)
    kept = (FastDropout(0.5).train()(torch.ones(2000, 64)) != 0).float()
    corr = torch.corrcoef(kept.T)  # [64, 64] between columns
    off_diagonal = corr[~torch.eye(64, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.12  # 2,000 rows: |r| of independent columns < ~5 / sqrt(2000)
    assert (kept[0] != kept[1]).any()  # rows get different masks


def test_masks_follow_torch_seed_and_advance_it():
    x = torch.ones(8, 16)
    drop = FastDropout(0.5).train()
    torch.manual_seed(3)
    a, b = drop(x), drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), a) and torch.equal(drop(x), b)
    assert not torch.equal(a, b)  # each forward draws a new mask
    torch.manual_seed(4)
    assert not torch.equal(drop(x), a)


def test_gradient_is_the_mask():
    torch.manual_seed(5)
    x = torch.randn(4, 6, requires_grad=True)
    out = FastDropout(0.25).train()(x)
    out.sum().backward()
    mask = torch.where(out != 0, torch.tensor(1 / 0.75), torch.tensor(0.0))
    torch.testing.assert_close(x.grad, mask)


def test_eval_mode_zero_p_and_other_dtypes_are_nn_dropout():
    x = torch.randn(5, 7)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    torch.manual_seed(6)
    half = FastDropout(0.5).train()(x.to(torch.bfloat16))
    torch.manual_seed(6)
    assert torch.equal(half, nn.Dropout(0.5).train()(x.to(torch.bfloat16)))
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))


def test_float64_input_keeps_its_dtype():
    out = FastDropout(0.3).train()(torch.ones(3, 4, dtype=torch.float64))
    assert out.dtype == torch.float64


def test_is_an_nn_dropout_for_mc_dropout_and_helpers():
    head = FeatureHead((12,), 3, hidden=(8, 6), dropout=0.3)
    drops = [m for m in head.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(isinstance(m, FastDropout) for m in drops)
    assert has_dropout(head)
    head.eval()
    enable_dropout_only(head)
    assert all(m.training for m in drops)


def test_consistent_mc_dropout_still_shares_one_mask_per_pass():
    torch.manual_seed(7)
    head = FeatureHead((10,), 4, dropout=0.5)
    x = torch.randn(1, 10).repeat(6, 1)  # six identical inputs
    y = torch.zeros(6, dtype=torch.long)
    data = ALDataModule(ArrayDataset("toy", x, y, x[:2], y[:2], 4), eval_batch_size=4)
    probs = mc_dropout_probs(head, data, np.arange(6), 5, generator_seed=0)
    assert probs.shape == (6, 5, 4)
    torch.testing.assert_close(probs, probs[:1].expand_as(probs))  # identical inputs, identical functions
    assert not torch.allclose(probs[0, 0], probs[0, 1])  # different passes differ
