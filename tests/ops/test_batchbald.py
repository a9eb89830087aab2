"""BatchBALD against brute-force enumeration of the joint on tiny N, T, C."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from al_bench.ops.batchbald import JointConfigurations, batchbald, conditional_entropies
from al_bench.ops.bayesian import bald


def _random_mc(n: int, t: int, c: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2.5 * torch.randn(n, t, c, generator=g, dtype=torch.float64)).softmax(-1)


def _brute_joint_entropy(p: torch.Tensor, idx: list[int]) -> float:
    """H[y_idx] = -sum over all C^k label tuples of q log q, q = mean_t prod_i p(y_i | w_t)."""
    t, c = p.shape[1:]
    h = 0.0
    for labels in itertools.product(range(c), repeat=len(idx)):
        q = torch.ones(t, dtype=torch.float64)
        for i, y in zip(idx, labels):
            q = q * p[i, :, y]
        m = float(q.mean())
        h -= m * math.log(m) if m > 0 else 0.0
    return h


def _brute_mi(p: torch.Tensor, idx: list[int]) -> float:
    return _brute_joint_entropy(p, idx) - float(conditional_entropies(p[idx]).sum())


def _brute_greedy(p: torch.Tensor, budget: int) -> tuple[list[int], list[float]]:
    chosen, scores = [], []
    for _ in range(budget):
        score, best = max((_brute_mi(p, chosen + [x]), -x) for x in range(len(p)) if x not in chosen)
        chosen.append(-best)
        scores.append(score)
    return chosen, scores


@pytest.mark.parametrize("k", [2, 3])
def test_exact_joint_entropy_matches_enumeration(k):
    p = _random_mc(6, 5, 3, seed=k)
    idx = [4, 1, 3][:k]
    joint = JointConfigurations.exact(p[idx])
    assert joint.entropy().item() == pytest.approx(_brute_joint_entropy(p, idx), abs=1e-12)
    with_x = joint.entropies_with(p)
    for x in range(len(p)):
        assert with_x[x].item() == pytest.approx(_brute_joint_entropy(p, idx + [x]), abs=1e-12)


@pytest.mark.parametrize(
    ("n", "t", "c", "budget", "seed"), [(6, 4, 3, 3, 0), (7, 5, 2, 4, 1), (5, 3, 4, 3, 2)]
)
def test_exact_greedy_matches_brute_force(n, t, c, budget, seed):
    p = _random_mc(n, t, c, seed)
    positions, scores = batchbald(p, budget, generator=torch.Generator().manual_seed(0))
    chosen, expected = _brute_greedy(p, budget)
    assert positions.tolist() == chosen
    assert torch.allclose(scores, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_sampled_estimate_is_close_to_the_exact_joint():
    p = _random_mc(6, 4, 3, seed=5)
    idx = [0, 2, 5]
    g = torch.Generator().manual_seed(1)
    sampled = JointConfigurations.sample(p[idx], 40_000, g)
    assert sampled.sampled and sampled.n_configurations == 40_000
    assert sampled.entropy().item() == pytest.approx(_brute_joint_entropy(p, idx), abs=0.03)
    expected = torch.tensor([_brute_joint_entropy(p, idx + [x]) for x in range(6)], dtype=torch.float64)
    assert torch.allclose(sampled.entropies_with(p), expected, atol=0.04)


def test_sampled_greedy_scores_are_close_to_brute_force():
    p = _random_mc(6, 4, 3, seed=7)
    # exact_limit=3 forces sampling from the second point on (C^2 = 9 > 3).
    positions, scores = batchbald(p, 3, 40_000, generator=torch.Generator().manual_seed(2), exact_limit=3)
    for k in range(3):
        assert scores[k].item() == pytest.approx(_brute_mi(p, positions[: k + 1].tolist()), abs=0.04)


def test_extending_a_sample_draws_from_each_configuration_pass():
    p = _random_mc(4, 4, 3, seed=8)
    g = torch.Generator().manual_seed(3)
    joint = JointConfigurations.sample(p[[0]], 40_000, g).extend_sampled(p[1], g)
    assert joint.entropy().item() == pytest.approx(_brute_joint_entropy(p, [0, 1]), abs=0.03)


def test_first_pick_is_bald():
    p = _random_mc(20, 6, 4, seed=11)
    positions, scores = batchbald(p, 1, generator=torch.Generator().manual_seed(0))
    b = bald(p)
    assert positions.item() == int(b.argmax())
    assert scores[0].item() == pytest.approx(b.max().item(), abs=1e-12)


def test_one_hot_disagreement_of_two_points():
    # two identical points whose passes split between two certain classes: I[y1; w] = ln 2 and the pair adds
    # nothing (y2 = y1 under every pass), so the second pick goes to the independent point z.
    eye = torch.eye(2, dtype=torch.float64)
    a = torch.stack([eye[0], eye[1], eye[0], eye[1]])
    z = torch.stack([eye[0], eye[0], eye[1], eye[1]])
    p = torch.stack([a, a, z])
    positions, scores = batchbald(p, 3, generator=torch.Generator().manual_seed(0))
    assert positions[0].item() in (0, 1) and positions[1].item() == 2
    assert torch.allclose(
        scores, torch.tensor([math.log(2), 2 * math.log(2), 2 * math.log(2)], dtype=torch.float64)
    )


def test_sampled_greedy_is_deterministic_and_picks_unique():
    p = _random_mc(30, 5, 4, seed=12)
    runs = [batchbald(p, 8, 500, generator=torch.Generator().manual_seed(4)) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert len(set(runs[0][0].tolist())) == 8


def test_chunking_does_not_change_scores():
    p = _random_mc(13, 5, 3, seed=13)
    g = torch.Generator().manual_seed(0)
    a = batchbald(p, 4, generator=g, chunk_size=1)
    b = batchbald(p, 4, generator=g, chunk_size=1000)
    assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-12)


def test_float32_input_and_budget_checks():
    p = _random_mc(5, 3, 3, seed=14).float()
    positions, scores = batchbald(p, 5, generator=torch.Generator().manual_seed(0))
    assert sorted(positions.tolist()) == [0, 1, 2, 3, 4] and scores.dtype == torch.float64
    assert batchbald(p, 0, generator=torch.Generator())[0].numel() == 0
    with pytest.raises(ValueError):
        batchbald(p, 6, generator=torch.Generator())


def test_sampled_joint_with_certain_passes_stays_finite():
    eye = torch.eye(3, dtype=torch.float64)
    p = torch.stack([torch.stack([eye[i % 3], eye[(i + 1) % 3], eye[i % 2]]) for i in range(5)])  # [5, 3, 3]
    positions, scores = batchbald(p, 4, 600, generator=torch.Generator().manual_seed(0), exact_limit=1)
    assert torch.isfinite(scores).all() and len(set(positions.tolist())) == 4
    for k in range(
        4
    ):  # every sampled configuration is certain under its own pass: the estimate is exact here
        assert scores[k].item() == pytest.approx(_brute_mi(p, positions[: k + 1].tolist()), abs=1e-9)


@pytest.mark.slow
def test_bench_script_quick_agrees_with_the_references(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_bayesian.py"
    subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)], check=True, timeout=600)
    res = json.loads((tmp_path / "bayesian.json").read_text())
    assert (tmp_path / "bayesian.md").exists()
    assert all(r["p0_identical_within_1e-5"] for r in res["mc_dropout"])
    assert all(r["equal_within_1e-6_rel"] for r in res["batchbald_step"])
    assert res["batchbald_greedy"]["same_picks"] and res["batchbald_greedy"]["max_rel_err_scores"] <= 1e-6
