"""BADGE k-means++ on factored gradient embeddings and core-set k-center greedy, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from al_bench.ops.diversity import (
    badge_factors,
    badge_kmeanspp,
    badge_sq_dist_to,
    coverage_radius,
    kcenter_greedy,
    kmeanspp_potential,
)


def _factors(n: int, k: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, k, generator=g, dtype=dtype), 1)
    feats = torch.relu(torch.randn(n, d, generator=g, dtype=dtype))
    return badge_factors(probs, feats)


def _embedding(a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The materialised K*D gradient embedding [N, K*D] (what the factors avoid)."""
    return (a[:, :, None] * h[:, None, :]).reshape(len(a), -1)


# ---- BADGE factors and distances -----------------------------------------------------------------------
def test_badge_factors_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=torch.float64)
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    a, h = badge_factors(probs, feats)
    torch.testing.assert_close(a, torch.tensor([[-0.3, 0.2, 0.1], [0.1, 0.3, -0.4]], dtype=torch.float64))
    assert h is feats
    assert probs[0, 0] == 0.7, "probs left untouched"


@pytest.mark.parametrize("seed", range(3))
def test_factored_distances_equal_materialised(seed):
    a, h = _factors(40, 5, 7, seed)
    g = _embedding(a, h)
    for i in (0, 13, 39):
        expected = ((g - g[i]) ** 2).sum(1)
        got = badge_sq_dist_to(a, h, a[i], h[i])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-12)
        assert got[i] == pytest.approx(0.0, abs=1e-12)
        assert (got >= 0).all()


def test_potential_equals_materialised():
    a, h = _factors(50, 4, 6, 0)
    g = _embedding(a, h)
    centres = torch.tensor([3, 17, 40])
    expected = torch.cdist(g, g[centres]).pow(2).min(1).values.sum()
    for chunk in (1, 2, 1024):
        assert kmeanspp_potential(a, h, centres, chunk_size=chunk) == pytest.approx(float(expected), rel=1e-9)


# ---- BADGE k-means++ ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_kmeanspp_first_centre_is_largest_gradient_and_no_duplicates(seed):
    a, h = _factors(60, 4, 5, seed)
    gen = torch.Generator().manual_seed(seed)
    picked = badge_kmeanspp(a, h, 60, gen)  # the whole set: forces draws down to the last points
    assert picked.dtype == torch.long and picked.shape == (60,)
    assert int(picked[0]) == int(_embedding(a, h).norm(dim=1).argmax())
    assert len(set(picked.tolist())) == 60


def test_kmeanspp_is_seeded():
    a, h = _factors(80, 4, 5, 0)
    one = badge_kmeanspp(a, h, 20, torch.Generator().manual_seed(7))
    two = badge_kmeanspp(a, h, 20, torch.Generator().manual_seed(7))
    other = badge_kmeanspp(a, h, 20, torch.Generator().manual_seed(8))
    assert torch.equal(one, two)
    assert not torch.equal(one, other)


def test_kmeanspp_second_centre_follows_d2_law():
    """Frequencies of the second centre over seeded draws match D^2 / sum D^2 (chi-square)."""
    a, h = _factors(6, 3, 4, 11)
    first = int(_embedding(a, h).norm(dim=1).argmax())
    d2 = badge_sq_dist_to(a, h, a[first], h[first]).numpy()
    d2[first] = 0.0
    expected_p = d2 / d2.sum()
    n_draws = 3000
    counts = np.zeros(len(d2))
    for s in range(n_draws):
        counts[int(badge_kmeanspp(a, h, 2, torch.Generator().manual_seed(s))[1])] += 1
    assert counts[first] == 0
    keep = expected_p > 0
    p_value = stats.chisquare(counts[keep], n_draws * expected_p[keep]).pvalue
    assert p_value > 1e-4, (counts, n_draws * expected_p)


def test_kmeanspp_third_centre_uses_nearest_centre():
    """The third draw is proportional to the min over both centres, not the distance to the last one."""
    a, h = _factors(5, 3, 4, 3)
    g = _embedding(a, h)
    counts: dict[tuple[int, int], np.ndarray] = {}
    for s in range(3000):
        p = badge_kmeanspp(a, h, 3, torch.Generator().manual_seed(s)).tolist()
        counts.setdefault((p[0], p[1]), np.zeros(5))[p[2]] += 1
    (first, second), c = max(counts.items(), key=lambda kv: kv[1].sum())
    d2 = torch.cdist(g, g[[first, second]]).pow(2).min(1).values.numpy()
    d2[[first, second]] = 0.0
    keep = d2 > 0
    assert c[~keep].sum() == 0
    assert stats.chisquare(c[keep], c.sum() * d2[keep] / d2.sum()).pvalue > 1e-4


def test_kmeanspp_duplicates_fall_back_to_uniform_unchosen():
    """Identical points: after the first centre all D^2 are 0; the rest is drawn among unchosen rows."""
    probs = torch.tensor([[0.9, 0.1]] * 5, dtype=torch.float64)
    feats = torch.ones(5, 3, dtype=torch.float64)
    a, h = badge_factors(probs, feats)
    firsts = set()
    for s in range(30):
        picked = badge_kmeanspp(a, h, 5, torch.Generator().manual_seed(s))
        assert sorted(picked.tolist()) == [0, 1, 2, 3, 4]
        firsts.add(int(picked[1]))
    assert len(firsts) > 1, "the fallback draw is random, not the first free row"


def test_kmeanspp_budget_edges():
    a, h = _factors(5, 3, 2, 0)
    assert badge_kmeanspp(a, h, 0, torch.Generator()).shape == (0,)
    with pytest.raises(ValueError):
        badge_kmeanspp(a, h, 6, torch.Generator())


def test_kmeanspp_float32_agrees_with_float64_on_first_centres():
    a, h = _factors(300, 10, 16, 5)
    ref = badge_kmeanspp(a, h, 30, torch.Generator().manual_seed(1))
    got = badge_kmeanspp(a.float(), h.float(), 30, torch.Generator().manual_seed(1))
    assert torch.equal(ref[:5], got[:5])


# ---- k-center greedy ----------------------------------------------------------------------------------
def _kcenter_brute(x: np.ndarray, labeled: list[int], budget: int) -> list[int]:
    """Textbook k-center greedy with the full distance matrix (float64)."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    centres = list(labeled)
    if not centres:
        centres = [int(np.argmax(np.linalg.norm(x, axis=1)))]
        picked = list(centres)
    else:
        picked = []
    while len(picked) < budget:
        min_d = dist[:, centres].min(1)
        min_d[centres] = -1.0
        u = int(np.argmax(min_d))
        centres.append(u)
        picked.append(u)
    return picked


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_labeled", [0, 1, 7])
def test_kcenter_exact_sequence_vs_brute_force(seed, n_labeled):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 5))
    labeled = sorted(rng.choice(60, size=n_labeled, replace=False).tolist())
    expected = _kcenter_brute(x, labeled, 15)
    for chunk in (3, 1024):  # chunking changes nothing
        got = kcenter_greedy(
            torch.from_numpy(x), torch.tensor(labeled, dtype=torch.long), 15, chunk_size=chunk
        )
        assert got.tolist() == expected
    assert not set(expected) & set(labeled)


def test_kcenter_float64_arithmetic():
    """Points that differ below float32 resolution are still told apart in float64."""
    x = torch.tensor([[0.0], [1.0], [1.0 + 1e-12], [3.0]], dtype=torch.float64)
    assert kcenter_greedy(x, torch.tensor([0]), 3).tolist() == [3, 2, 1]  # row 2 is 1e-12 farther than row 1
    assert kcenter_greedy(x.float(), torch.tensor([0]), 3).tolist() == [3, 1, 2]  # float32: a tie, lowest row


def test_kcenter_never_returns_labeled_or_duplicates_when_distances_vanish():
    x = torch.zeros(6, 2, dtype=torch.float64)  # every distance is 0
    got = kcenter_greedy(x, torch.tensor([0, 2]), 4)
    assert sorted(got.tolist()) == [1, 3, 4, 5]
    with pytest.raises(ValueError):
        kcenter_greedy(x, torch.tensor([0, 2]), 5)
    assert kcenter_greedy(x, torch.tensor([0]), 0).shape == (0,)


def test_coverage_radius():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=torch.float64)
    assert coverage_radius(x, torch.tensor([0])) == pytest.approx(10.0)
    assert coverage_radius(x, torch.tensor([0, 2])) == pytest.approx(5.0)
    # the greedy's last distance is the radius it guarantees
    picked = kcenter_greedy(x, torch.tensor([0]), 1)
    assert picked.tolist() == [2]


# ---- benchmark script -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_bench_diversity_quick(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_diversity.py"
    spec = importlib.util.spec_from_file_location("bench_diversity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "diversity.json").read_text())
    assert saved["kcenter"]["radius_equal"] is True
    assert saved["badge"]["original"]["extrapolated"] is False
    assert "BADGE" in (tmp_path / "diversity.md").read_text()
    assert result["recorder"]["epochs"] == 2
