"""BAIT's factored kernel against brute force with explicit K*D x K*D matrices (float64, tiny sizes)."""

from __future__ import annotations

import math

import pytest
import torch

from al_bench.ops.bait import (
    bait_greedy,
    bait_objective,
    bait_select,
    fisher_factor,
    fisher_quadratic,
    fisher_sqrt,
    fisher_sum,
)

F64 = torch.float64


def _data(n: int, k: int, d: int, seed: int, dtype=F64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(n, k, generator=g, dtype=F64), 1).to(dtype)
    feats = torch.randn(n, d, generator=g, dtype=F64).to(dtype)
    return probs, feats


def _problem(seed: int, n: int = 12, n_lab: int = 4, k: int = 3, d: int = 2):
    probs, feats = _data(n + n_lab, k, d, seed)
    return probs[:n], feats[:n], probs[n:], feats[n:]


# ---- brute force: explicit matrices, per-candidate loops ---------------------------------------------------
def _fisher(p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``sum_k p_k g_k g_k^T`` with ``g_k = (e_k - p) (kron) h``: the [K*D, K*D] Fisher of one point."""
    eye = torch.eye(len(p), dtype=p.dtype)
    out = torch.zeros(len(p) * len(h), len(p) * len(h), dtype=p.dtype)
    for k in range(len(p)):
        g = torch.kron(eye[k] - p, h)
        out += p[k] * torch.outer(g, g)
    return out


class Brute:
    """BAIT's objective and forward-backward greedy, each candidate's objective recomputed from scratch."""

    def __init__(self, probs, feats, lprobs, lfeats, budget, lam=1.0, weighting="authors") -> None:
        n, n_lab = len(probs), len(lprobs)
        self.fis = [_fisher(p, h) for p, h in zip(probs, feats)]
        lab = [_fisher(p, h) for p, h in zip(lprobs, lfeats)]
        size = self.fis[0].shape[0]
        self.fisher_u = (sum(self.fis) + sum(lab, torch.zeros(size, size, dtype=F64))) / (n + n_lab)
        self.w_sel = (budget if weighting == "authors" else 1) / (n_lab + budget)
        self.m0 = lam * torch.eye(size, dtype=F64) + sum(lab, torch.zeros(size, size, dtype=F64)) / (
            n_lab + budget
        )

    def objective(self, subset) -> float:
        m = self.m0 + self.w_sel * sum((self.fis[i] for i in subset), torch.zeros_like(self.m0))
        return float(torch.trace(torch.linalg.solve(m, self.fisher_u)))

    def best_addition(self, subset: list[int]) -> tuple[int, float]:
        """(argmin over unchosen x of f(S + x), runner-up gap)."""
        vals = {x: self.objective(subset + [x]) for x in range(len(self.fis)) if x not in subset}
        return self._best(vals)

    def best_removal(self, subset: list[int]) -> tuple[int, float]:
        vals = {x: self.objective([y for y in subset if y != x]) for x in subset}
        return self._best(vals)

    @staticmethod
    def _best(vals: dict[int, float]) -> tuple[int, float]:
        order = sorted(vals, key=lambda x: (vals[x], x))
        gap = vals[order[1]] - vals[order[0]] if len(order) > 1 else math.inf
        return order[0], gap

    def run(self, budget: int, oversample: float = 2.0) -> tuple[list[int], list[int]]:
        subset: list[int] = []
        for _ in range(min(len(self.fis), int(oversample * budget))):
            subset.append(self.best_addition(subset)[0])
        forward = list(subset)
        while len(subset) > budget:
            subset.remove(self.best_removal(subset)[0])
        return forward, subset


# ---- factors -----------------------------------------------------------------------------------------------
def test_fisher_sqrt_squares_to_softmax_covariance():
    probs, _ = _data(30, 5, 1, 0)
    peaked = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0], [0.2] * 5], dtype=F64)
    for p in (probs, peaked):
        b = fisher_sqrt(p)
        assert b.shape == (len(p), 4, 5)
        cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        torch.testing.assert_close(b.transpose(1, 2) @ b, cov, rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_factored_fisher_equals_materialised(seed):
    probs, feats = _data(12, 3, 2, seed)
    v = fisher_factor(probs, feats)
    assert v.shape == (12, 6, 2)
    for i in range(12):
        expected = _fisher(probs[i], feats[i])
        torch.testing.assert_close(v[i] @ v[i].T, expected, rtol=0, atol=1e-14)
        # the authors' K-row factor sqrt(p_k) g_k gives the same Fisher
        rows = torch.stack(
            [
                probs[i, k].sqrt() * torch.kron(torch.eye(3, dtype=F64)[k] - probs[i], feats[i])
                for k in range(3)
            ]
        )
        torch.testing.assert_close(rows.T @ rows, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("chunk", [1, 5, 1024])
def test_fisher_sum_equals_materialised(chunk):
    probs, feats = _data(13, 4, 3, 1)
    expected = sum(_fisher(p, h) for p, h in zip(probs, feats))
    torch.testing.assert_close(fisher_sum(probs, feats, chunk=chunk), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("chunk", [1, 4, 1024])
def test_fisher_quadratic_equals_materialised(chunk):
    probs, feats = _data(11, 4, 3, 2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 12, generator=g, dtype=F64)
    q = x @ x.T
    v = fisher_factor(probs, feats)
    expected = v.transpose(1, 2) @ q @ v
    torch.testing.assert_close(
        fisher_quadratic(q, fisher_sqrt(probs), feats, chunk=chunk), expected, rtol=1e-12, atol=1e-12
    )


# ---- objective and greedy steps ----------------------------------------------------------------------------
@pytest.mark.parametrize("weighting", ["authors", "mean"])
@pytest.mark.parametrize("lam", [1.0, 0.05])
def test_objective_history_equals_brute_force(weighting, lam):
    probs, feats, lp, lf = _problem(0)
    res = bait_greedy(probs, feats, lp, lf, 3, lam=lam, weighting=weighting)
    brute = Brute(probs, feats, lp, lf, 3, lam=lam, weighting=weighting)
    subset: list[int] = []
    expected = [brute.objective(subset)]
    for x in res.forward.tolist():
        subset.append(x)
        expected.append(brute.objective(subset))
    for x in res.removed.tolist():
        subset.remove(x)
        expected.append(brute.objective(subset))
    assert len(res.objective) == 1 + 6 + 3
    direct = bait_objective(probs, feats, lp, lf, res.selected, 3, lam=lam, weighting=weighting)
    assert direct == pytest.approx(expected[-1], rel=1e-10)
    assert res.objective == pytest.approx(expected, rel=1e-9)
    assert all(a >= b for a, b in zip(expected[:7], expected[1:7])), "adding points never raises f"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighting", ["authors", "mean"])
def test_each_forward_step_is_brute_force_argmin(seed, weighting):
    probs, feats, lp, lf = _problem(seed)
    res = bait_greedy(probs, feats, lp, lf, 4, lam=0.5, weighting=weighting)
    brute = Brute(probs, feats, lp, lf, 4, lam=0.5, weighting=weighting)
    forward = res.forward.tolist()
    assert len(forward) == 8
    for t, x in enumerate(forward):
        best, gap = brute.best_addition(forward[:t])
        assert gap > 1e-9, "the test data must not tie"
        assert x == best, f"forward step {t}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighting", ["authors", "mean"])
def test_each_backward_step_is_brute_force_argmin(seed, weighting):
    probs, feats, lp, lf = _problem(seed)
    res = bait_greedy(probs, feats, lp, lf, 4, lam=0.5, weighting=weighting)
    brute = Brute(probs, feats, lp, lf, 4, lam=0.5, weighting=weighting)
    subset = res.forward.tolist()
    for t, x in enumerate(res.removed.tolist()):
        best, gap = brute.best_removal(subset)
        assert gap > 1e-9, "the test data must not tie"
        assert x == best, f"backward step {t}"
        subset.remove(x)
    assert sorted(subset) == sorted(res.selected.tolist())


@pytest.mark.parametrize(
    ("seed", "n_lab", "budget", "oversample", "weighting"),
    [
        (0, 4, 3, 2.0, "authors"),
        (1, 0, 3, 2.0, "authors"),
        (2, 6, 2, 3.0, "authors"),
        (3, 4, 5, 2.0, "authors"),  # 2b = 10 of 12 candidates
        (4, 4, 7, 2.0, "authors"),  # 2b > N: the forward pass stops at N
        (5, 2, 4, 1.0, "authors"),  # no backward pass
        (6, 4, 3, 2.0, "mean"),
        (7, 0, 4, 2.5, "mean"),
    ],
)
def test_selection_equals_brute_force_procedure(seed, n_lab, budget, oversample, weighting):
    probs, feats, lp, lf = _problem(seed, n_lab=n_lab)
    res = bait_greedy(probs, feats, lp, lf, budget, lam=1.0, oversample=oversample, weighting=weighting)
    forward, selected = Brute(probs, feats, lp, lf, budget, weighting=weighting).run(budget, oversample)
    assert res.forward.tolist() == forward
    assert res.selected.tolist() == selected
    assert res.selected.tolist() == [x for x in forward if x in selected], "forward order"


def test_larger_problem_matches_brute_force():
    probs, feats, lp, lf = _problem(11, n=30, n_lab=10, k=4, d=3)
    res = bait_greedy(probs, feats, lp, lf, 5, lam=0.3)
    forward, selected = Brute(probs, feats, lp, lf, 5, lam=0.3).run(5)
    assert res.forward.tolist() == forward and res.selected.tolist() == selected


# ---- contract ----------------------------------------------------------------------------------------------
def test_budget_unique_positions_deterministic_and_implementation_knobs_irrelevant():
    probs, feats, lp, lf = _problem(3, n=60, n_lab=20, k=5, d=4)
    ref = bait_greedy(probs, feats, lp, lf, 10, lam=0.5)
    sel = ref.selected
    assert sel.dtype == torch.long and len(sel) == 10 and len(torch.unique(sel)) == 10
    assert sel.min() >= 0 and sel.max() < 60
    assert torch.equal(bait_select(probs, feats, lp, lf, 10, lam=0.5), sel)
    for chunk, flush, block in [(1, 1, 1), (7, 3, 5), (1024, 1000, None)]:
        other = bait_greedy(probs, feats, lp, lf, 10, lam=0.5, chunk=chunk, flush_every=flush, block=block)
        assert torch.equal(other.forward, ref.forward) and torch.equal(other.selected, sel)
        assert other.objective == pytest.approx(ref.objective, rel=1e-10)


def test_float32_follows_float64():
    probs, feats, lp, lf = _problem(5, n=80, n_lab=20, k=4, d=6)
    ref = bait_greedy(probs, feats, lp, lf, 8)
    f32 = bait_greedy(probs.float(), feats.float(), lp.float(), lf.float(), 8)
    assert f32.selected.tolist() == ref.selected.tolist()
    assert f32.objective == pytest.approx(ref.objective, rel=1e-4)


def test_edge_cases():
    probs, feats, lp, lf = _problem(0)
    assert len(bait_select(probs, feats, lp, lf, 0)) == 0
    everything = bait_greedy(probs, feats, lp, lf, 12)
    assert sorted(everything.selected.tolist()) == list(range(12)) and len(everything.removed) == 0
    no_labels = bait_select(probs, feats, lp[:0], lf[:0], 3)
    assert len(torch.unique(no_labels)) == 3
    with pytest.raises(ValueError, match="cannot select"):
        bait_select(probs, feats, lp, lf, 13)
    with pytest.raises(ValueError, match="weighting"):
        bait_select(probs, feats, lp, lf, 2, weighting="sum")
    with pytest.raises(ValueError, match="columns"):
        bait_select(probs, feats, lp[:, :2], lf, 2)
    with pytest.raises(ValueError, match="oversample"):
        bait_select(probs, feats, lp, lf, 2, oversample=0.5)
    with pytest.raises(ValueError, match="probs"):
        bait_select(probs, feats[:5], lp, lf, 2)


@pytest.mark.slow
def test_bench_script_reference_picks_the_same_points(tmp_path):
    """scripts/bench_bait.py --quick: the authors-style reference (materialised factors, their Woodbury
    steps) and this kernel run every step in float64 and pick the same points."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_bait.py"
    spec = importlib.util.spec_from_file_location("bench_bait_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--quick", "--out-dir", str(tmp_path)])
    ref = out["result"]["reference"]
    assert ref["float64"]["identical"], ref["float64"]
    assert out["result"]["ours"]["objective_drift"] < 1e-5
    assert (tmp_path / "bait.md").exists() and (tmp_path / "bait.json").exists()
