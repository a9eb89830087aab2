"""Influence kernels against brute force: explicit Hessians, per-sample autograd loops, and retraining."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch.func import functional_call

from al_bench.models.mlp import MLP
from al_bench.ops import influence as inf


def _tiny_mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    model = MLP((4,), num_classes=3, hidden=(5,), dropout=0.5).double()
    model.eval()
    return model


def _data(n: int = 12, d: int = 4, c: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


def _explicit_hessian(model, flat: inf.FlatParams, x, y, l2: float = 0.0) -> torch.Tensor:
    """Hessian [P, P] of mean CE + l2/2 |theta|^2 wrt the flat subset (autograd.functional.hessian)."""

    def loss(theta: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, flat.unflatten(theta), (x,))
        return F.cross_entropy(out, y) + 0.5 * l2 * (theta * theta).sum()

    return torch.autograd.functional.hessian(loss, flat.flatten(flat.values()))


def _loop_grads(model, names: list[str], x, y) -> torch.Tensor:
    """Per-sample gradients [B, P] by one autograd backward per sample (the reference)."""
    params = dict(model.named_parameters())
    rows = []
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, [params[n] for n in names])
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _spd(p: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(p, p, generator=g, dtype=torch.float64)
    return a @ a.T / p + 0.1 * torch.eye(p, dtype=torch.float64)


# ---- parameter subsets ----------------------------------------------------------------------------------
def test_select_parameters_subsets():
    model = _tiny_mlp()
    assert inf.select_parameters(model, "last_layer") == ["head.weight", "head.bias"]
    weights = inf.select_parameters(model, "weights")
    assert weights == [n for n, p in model.named_parameters() if p.ndim > 1]
    assert "head.weight" in weights and all(not n.endswith("bias") for n in weights)
    assert inf.select_parameters(model, ["head.bias", "first.1.weight"]) == ["first.1.weight", "head.bias"]
    with pytest.raises(ValueError, match="no parameters named"):
        inf.select_parameters(model, ["nope"])
    with pytest.raises(ValueError, match="unknown parameter subset"):
        inf.select_parameters(model, "everything")


def test_flat_params_round_trip_with_leading_dims():
    model = _tiny_mlp()
    flat = inf.FlatParams(model, "weights")
    assert flat.size == sum(p.numel() for n, p in model.named_parameters() if p.ndim > 1)
    vec = torch.randn(2, 3, flat.size, dtype=torch.float64)
    parts = flat.unflatten(vec)
    assert parts["head.weight"].shape == (2, 3, 3, 5)
    torch.testing.assert_close(flat.flatten(parts), vec)


# ---- Hessian-vector products ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward_over_reverse", "reverse_over_reverse"])
@pytest.mark.parametrize("subset", ["last_layer", "weights", ["first.1.bias", "head.weight"]])
def test_make_hvp_matches_explicit_hessian(subset, mode):
    model = _tiny_mlp()
    x, y = _data()
    flat = inf.FlatParams(model, subset)
    h = _explicit_hessian(model, flat, x, y, l2=0.3)
    hvp = inf.make_hvp(model, None, (x, y), flat, l2=0.3, mode=mode)
    vecs = torch.randn(3, flat.size, dtype=torch.float64)
    torch.testing.assert_close(hvp(vecs[0]), h @ vecs[0])
    torch.testing.assert_close(hvp(vecs), vecs @ h.T)


@pytest.mark.parametrize("mode", ["forward_over_reverse", "reverse_over_reverse"])
def test_make_hvp_sampler_gives_each_chain_its_own_minibatch(mode):
    model = _tiny_mlp()
    x, y = _data(n=8)
    flat = inf.FlatParams(model, "weights")
    batches = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])  # chain r uses rows batches[r]
    hvp = inf.make_hvp(model, None, lambda step: (x[batches], y[batches]), flat, mode=mode)
    vecs = torch.randn(2, flat.size, dtype=torch.float64)
    out = hvp(vecs, 0)
    for r in range(2):
        h = _explicit_hessian(model, flat, x[batches[r]], y[batches[r]])
        torch.testing.assert_close(out[r], h @ vecs[r])


def test_make_hvp_leaves_train_mode_and_dropout_off():
    model = _tiny_mlp()
    model.train()
    x, y = _data()
    flat = inf.FlatParams(model, "weights")
    hvp = inf.make_hvp(model, None, (x, y), flat)
    vec = torch.randn(flat.size, dtype=torch.float64)
    torch.testing.assert_close(hvp(vec), hvp(vec))  # no dropout noise
    assert model.training
    model.eval()
    torch.testing.assert_close(hvp(vec), _explicit_hessian(model, flat, x, y) @ vec)


# ---- inverse HVPs --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("damping", "scale"), [(0.05, 10.0), (0.001, 40.0)])
def test_lissa_converges_to_damped_inverse_of_model_hessian(damping, scale):
    model = _tiny_mlp()
    x, y = _data()
    flat = inf.FlatParams(model, "last_layer")
    h = _explicit_hessian(model, flat, x, y, l2=0.2)
    v = torch.randn(flat.size, dtype=torch.float64)
    exact = torch.linalg.solve(h + damping * scale * torch.eye(flat.size, dtype=torch.float64), v)
    est = inf.lissa(lambda hs: hs @ h, v, damping=damping, scale=scale, steps=4000, repeats=2)
    torch.testing.assert_close(est, exact, rtol=1e-8, atol=1e-10)


def test_lissa_with_isal_defaults_is_the_authors_truncated_recursion():
    """250 steps of ISAL's recursion, divided by scale: ours equals a plain loop exactly."""
    h = _spd() * 50
    v = torch.randn(6, dtype=torch.float64)
    est = inf.lissa(lambda hs: hs @ h, v)  # damping 0.01, scale 1e4, 250 steps
    cur = v.clone()
    for _ in range(250):
        cur = v + 0.99 * cur - h @ cur / 1e4
    torch.testing.assert_close(est, cur / 1e4)
    exact = torch.linalg.solve(h + 100 * torch.eye(6, dtype=torch.float64), v)
    assert not torch.allclose(est, exact, rtol=1e-2)  # 250 steps at contraction ~0.99: not converged


def test_lissa_stochastic_chains_are_averaged():
    """Chain r at step j sees H_(r, j); the result is the mean of the per-chain recursions / scale."""
    hs = torch.stack([_spd(seed=k) for k in range(4)]).view(2, 2, 6, 6)  # [R, steps, P, P]
    v = torch.randn(6, dtype=torch.float64)
    est = inf.lissa(
        lambda h, step: torch.einsum("rpq,rq->rp", hs[:, step], h), v, 0.1, 3.0, steps=2, repeats=2
    )
    ref = []
    for r in range(2):
        cur = v.clone()
        for j in range(2):
            cur = v + 0.9 * cur - hs[r, j] @ cur / 3.0
        ref.append(cur / 3.0)
    torch.testing.assert_close(est, torch.stack(ref).mean(0))


def test_lissa_divergence_raises():
    with pytest.raises(FloatingPointError, match="diverged"):
        inf.lissa(lambda h: h @ (_spd() * 1e3), torch.ones(6, dtype=torch.float64), 0.01, 1.0, 2000)


def test_conjugate_gradient_solves_damped_system():
    model = _tiny_mlp()
    x, y = _data()
    flat = inf.FlatParams(model, "weights")
    h = _explicit_hessian(model, flat, x, y)
    hvp = inf.make_hvp(model, None, (x, y), flat)
    v = torch.randn(flat.size, dtype=torch.float64)
    got = inf.conjugate_gradient(hvp, v, damping=0.1, max_iter=500, tol=1e-12)
    exact = torch.linalg.solve(h + 0.1 * torch.eye(flat.size, dtype=torch.float64), v)
    torch.testing.assert_close(got, exact, rtol=1e-7, atol=1e-9)


# ---- per-sample gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("subset", ["last_layer", "weights"])
def test_per_sample_grads_and_grad_dot_match_autograd_loop(subset):
    model = _tiny_mlp()
    x, y = _data(n=11)
    names = inf.select_parameters(model, subset)
    ref = _loop_grads(model, names, x, y)
    torch.testing.assert_close(inf.per_sample_grads(model, subset, x, y, chunk_size=4), ref)
    s = torch.randn(ref.shape[1], dtype=torch.float64)
    torch.testing.assert_close(inf.grad_dot(model, subset, x, y, s, chunk_size=4), ref @ s)
    pseudo = model(x).argmax(1)
    ref_pseudo = _loop_grads(model, names, x, pseudo) @ s
    torch.testing.assert_close(inf.grad_dot(model, subset, x, None, s, chunk_size=3), ref_pseudo)
    torch.testing.assert_close(
        inf.isal_influence(model, subset, x, s, pool_size=20), -ref_pseudo / 20, msg="-(G_u . s) / |U|"
    )
    torch.testing.assert_close(
        inf.summed_loss_grad(model, subset, [(x[:5], y[:5]), (x[5:], y[5:])]), ref.sum(0)
    )


def test_weights_and_last_layer_differ_in_scope():
    model = _tiny_mlp()
    x, y = _data(n=5)
    last = inf.per_sample_grads(model, "last_layer", x, y)
    allw = inf.per_sample_grads(model, "weights", x, y)
    assert last.shape == (5, 3 * 5 + 3)
    assert allw.shape == (5, 4 * 5 + 3 * 5)
    torch.testing.assert_close(allw[:, -15:], last[:, :15])  # head.weight is in both, last in both orders


# ---- influence vs retraining ---------------------------------------------------------------------------
def test_isal_influence_ranks_candidates_like_retraining():
    """Logistic regression, strongly convex (L2): the first-order influence of adding one candidate (true
    label) on the summed validation loss ranks 50 candidates like retraining to convergence."""
    g = torch.Generator().manual_seed(0)
    d, c, n, m, n_val, l2 = 4, 3, 60, 50, 40, 0.05
    means = 1.5 * torch.randn(c, d, generator=g, dtype=torch.float64)

    def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        yy = torch.randint(0, c, (k,), generator=g)
        return means[yy] + torch.randn(k, d, generator=g, dtype=torch.float64), yy

    (x, y), (xc, yc), (xv, yv) = draw(n), draw(m), draw(n_val)

    def fit(xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # sum_i loss_i + n l2 / 2 |theta|^2: adding a sample is an eps = 1 upweighting of the sum objective
        return inf.fit_logistic_head(xs, ys, c, l2=l2 * n / len(xs), max_iter=1000, tol=1e-12)

    def val_loss(w: torch.Tensor, b: torch.Tensor) -> float:
        return float(F.cross_entropy(xv @ w.T + b, yv, reduction="sum"))

    w, b = fit(x, y)
    base = val_loss(w, b)
    actual = [
        val_loss(*fit(torch.cat([x, xc[j : j + 1]]), torch.cat([y, yc[j : j + 1]]))) - base for j in range(m)
    ]

    head = torch.nn.Linear(d, c).double()
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)
    params = ["weight", "bias"]
    v = inf.summed_loss_grad(head, params, [(xv, yv)])
    hvp = inf.make_hvp(head, None, (x, y), params, l2=l2)
    s_test = inf.conjugate_gradient(hvp, v, 0.0, max_iter=200, tol=1e-12)
    predicted = inf.isal_influence(head, params, xc, s_test, y=yc)
    rho = spearmanr(predicted.numpy(), np.asarray(actual)).statistic
    assert rho >= 0.8, rho
    closed = -inf.logistic_grad_dot(w, b, xc, s_test, yc) / m
    torch.testing.assert_close(closed, predicted)


# ---- logistic head closed forms (RALIF, ISAL last layer) -----------------------------------------------
def _head(d: int = 4, c: int = 3, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(d, c).double()


def test_logistic_closed_forms_match_torch_func():
    head = _head()
    x, y = _data(n=10)
    w, b = head.weight.detach(), head.bias.detach()
    params = ["weight", "bias"]
    probs = inf.logistic_probs(w, b, x)
    vecs = torch.randn(2, 15, dtype=torch.float64)
    generic = inf.make_hvp(head, None, (x, y), params, l2=0.2)
    torch.testing.assert_close(inf.make_logistic_hvp(x, probs, 0.2)(vecs), generic(vecs))
    rows = torch.tensor([[0, 1, 2], [3, 4, 5]])
    by_rows = inf.make_logistic_hvp(x, probs, 0.2, rows=lambda step: rows)(vecs)
    for r in range(2):
        one = inf.make_hvp(head, None, (x[rows[r]], y[rows[r]]), params, l2=0.2)
        torch.testing.assert_close(by_rows[r], one(vecs[r]))
    s = torch.randn(15, dtype=torch.float64)
    torch.testing.assert_close(inf.logistic_grad_dot(w, b, x, s, y), inf.grad_dot(head, params, x, y, s))
    torch.testing.assert_close(inf.logistic_grad_dot(w, b, x, s), inf.grad_dot(head, params, x, None, s))
    torch.testing.assert_close(
        inf.logistic_summed_grad(w, b, x, y), inf.summed_loss_grad(head, params, [(x, y)])
    )


def test_fit_logistic_head_reaches_the_regularised_optimum_deterministically():
    x, y = _data(n=30, seed=3)
    w, b = inf.fit_logistic_head(x, y, 3, l2=0.01)
    theta = torch.cat([w, b[:, None]], 1).requires_grad_(True)
    xa = torch.cat([x, torch.ones(30, 1, dtype=torch.float64)], 1)
    loss = F.cross_entropy(xa @ theta.T, y) + 0.005 * (theta * theta).sum()
    (grad,) = torch.autograd.grad(loss, theta)
    assert grad.abs().max() < 1e-6
    w2, b2 = inf.fit_logistic_head(x, y, 3, l2=0.01)
    assert torch.equal(w, w2) and torch.equal(b, b2)


def test_ralif_influence_matrix_matches_per_class_gradients():
    head = _head(seed=2)
    x, _ = _data(n=7)
    w, b = head.weight.detach(), head.bias.detach()
    s = torch.randn(15, dtype=torch.float64)
    got = inf.ralif_influence_matrix(w, b, x, s, n_labeled=9)
    logits = x @ w.T + b
    pool_loss = F.cross_entropy(logits, logits.argmax(1), reduction="sum")
    for u in range(7):
        for c in range(3):
            g = _loop_grads(head, ["weight", "bias"], x[u : u + 1], torch.tensor([c]))[0]
            torch.testing.assert_close(got[u, c], pool_loss - g @ s / 9)


def test_truncated_expected_influence_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.3, 0.3, 0.2, 0.2], [0.4, 0.5, 0.05, 0.05]])
    infl = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], [2.0, -1.0, 9.0, 9.0]])
    e = inf.truncated_expected_influence(infl, probs, tau=1.2)  # threshold 0.3 (strict)
    torch.testing.assert_close(e[0], torch.tensor(0.7))
    assert e[1] == float("inf")  # no class above 0.3
    torch.testing.assert_close(e[2], torch.tensor((0.4 * 2.0 + 0.5 * -1.0) / 2))


def test_ralif_expected_influence_equals_explicit_formula():
    g = torch.Generator().manual_seed(4)
    hl, hu = (
        torch.randn(20, 4, generator=g, dtype=torch.float64),
        torch.randn(9, 4, generator=g, dtype=torch.float64),
    )
    yl = torch.randint(0, 3, (20,), generator=g)
    w, b = inf.fit_logistic_head(hl, yl, 3, l2=0.1)
    e = inf.ralif_expected_influence(w, b, hl, hu, tau=1.0, damping=0.01, scale=5.0, l2=0.1, steps=3000)
    head = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)
    flat = inf.FlatParams(head, ["weight", "bias"])
    h = _explicit_hessian(head, flat, hl, yl, l2=0.1)
    probs_u = inf.logistic_probs(w, b, hu)
    v = _loop_grads(head, ["weight", "bias"], hu, probs_u.argmax(1)).sum(0)
    s = torch.linalg.solve(h + 0.05 * torch.eye(15, dtype=torch.float64), v)  # damping * scale
    pool_loss = F.cross_entropy(hu @ w.T + b, probs_u.argmax(1), reduction="sum")
    expected = []
    for u in range(9):
        keep = [c for c in range(3) if probs_u[u, c] > 1.0 / 3]
        vals = [
            probs_u[u, c]
            * (
                pool_loss
                - _loop_grads(head, ["weight", "bias"], hu[u : u + 1], torch.tensor([c]))[0] @ s / 20
            )
            for c in keep
        ]
        expected.append(torch.stack(vals).mean() if vals else torch.tensor(float("inf"), dtype=torch.float64))
    torch.testing.assert_close(e, torch.stack(expected))


def test_ralif_expected_influence_minibatch_chains_are_seeded():
    g = torch.Generator().manual_seed(5)
    hl, hu = (
        torch.randn(30, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 4, generator=g, dtype=torch.float64),
    )
    w, b = inf.fit_logistic_head(hl, torch.randint(0, 3, (30,), generator=g), 3, l2=0.1)
    kw = dict(tau=0.5, steps=20, repeats=3, batch_size=8)
    e1 = inf.ralif_expected_influence(w, b, hl, hu, generator=torch.Generator().manual_seed(1), **kw)
    e2 = inf.ralif_expected_influence(w, b, hl, hu, generator=torch.Generator().manual_seed(1), **kw)
    e3 = inf.ralif_expected_influence(w, b, hl, hu, generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(e1, e2) and not torch.equal(e1, e3)


def test_chain_schedule_walks_shuffled_passes():
    sched = inf.chain_schedule(
        5, repeats=2, steps=4, batch_size=3, generator=torch.Generator().manual_seed(0)
    )
    assert sched.shape == (2, 4, 3)
    for r in range(2):
        stream = sched[r].reshape(-1)
        assert sorted(stream[:5].tolist()) == list(range(5)) and sorted(stream[5:10].tolist()) == list(
            range(5)
        )
    assert not torch.equal(sched[0], sched[1])


# ---- RALIF diverse sampling ---------------------------------------------------------------------------
def test_diverse_sample_uses_distance_to_the_whole_labeled_set():
    """A candidate sitting on the *first* labeled point has D = 0 and is never drawn; the authors' bug
    (distances to the last labeled point only) would draw it about half of the time."""
    labeled = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    cands = torch.tensor([[5.0, 5.0], [0.0, 0.0], [5.0, -5.0]])  # pos 0 = lowest E, pos 1 = labeled[0]
    for seed in range(40):
        picks = inf.ralif_diverse_sample(cands, labeled, 2, np.random.default_rng(seed))
        assert picks.tolist() == [0, 2]


def test_diverse_sample_returns_unique_positions_deterministically():
    g = torch.Generator().manual_seed(0)
    cands, labeled = torch.randn(30, 3, generator=g), torch.randn(10, 3, generator=g)
    a = inf.ralif_diverse_sample(cands, labeled, 12, np.random.default_rng(7), chunk_size=3)
    b = inf.ralif_diverse_sample(cands, labeled, 12, np.random.default_rng(7))
    assert a[0] == 0 and len(set(a.tolist())) == 12 and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    dup = inf.ralif_diverse_sample(torch.zeros(5, 3), torch.zeros(2, 3), 5, np.random.default_rng(0))
    assert sorted(dup.tolist()) == list(range(5))  # all distances 0: uniform among the rest
    with pytest.raises(ValueError, match="cannot pick"):
        inf.ralif_diverse_sample(cands, labeled, 31, np.random.default_rng(0))


@pytest.mark.slow
def test_bench_influence_quick_runs_and_agrees(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_influence.py"
    cmd = [sys.executable, str(script), "--quick", "--models", "mlp", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    result = json.loads((tmp_path / "influence.json").read_text())
    assert (tmp_path / "influence.md").exists()
    for name, setting in result["settings"].items():
        if name.startswith("ISAL"):
            assert setting["max_rel_err_float64_end_to_end"] <= 1e-4
            assert setting["max_rel_err_float32_scoring_subset"] <= 1e-4
    assert result["settings"]["RALIF influence matrix"]["max_rel_err"] <= 1e-4
