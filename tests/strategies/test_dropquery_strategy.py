"""The dropquery strategy on tiny selection contexts whose penultimate features are the inputs themselves (so
the test knows them), the kernels run by hand, the threshold rule, the edge cases, the yaml, and a CLI run on
the default digits."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path

import hydra.utils
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from al_bench.build import build_strategy
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.ops.candidate_kmeans import select_flagged
from al_bench.ops.dropquery import dropquery_flags
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.dropquery import DropQuery
from tests.conftest import PYTHON, ROOT, random_selection_context

YAML = ROOT / "configs" / "strategy" / "dropquery.yaml"
N_TRAIN, N_FEATURES, N_CLASSES = 150, 8, 4
LABELED = np.arange(0, N_TRAIN, 10)
SUBSET = np.setdiff1d(np.arange(N_TRAIN), LABELED)[::2]


class IdentityNet(ALNet):
    """Penultimate features = the inputs [B, D]; a seeded linear head."""

    def __init__(self, dim: int, num_classes: int, seed: int = 7) -> None:
        super().__init__()
        self.feature_dim, self.num_classes = dim, num_classes
        self.head = nn.Linear(dim, num_classes)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(num_classes, dim, generator=g))
            self.head.bias.copy_(0.1 * torch.randn(num_classes, generator=g))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return z


def make_ctx(seed: int = 0, budget: int = 5, candidates: np.ndarray | None = None) -> SelectionContext:
    net = IdentityNet(N_FEATURES, N_CLASSES)
    return random_selection_context(
        net, N_TRAIN, N_FEATURES, N_CLASSES, LABELED, budget, seed, candidates=candidates
    )


def by_hand(ctx: SelectionContext, seed: int, **kw) -> tuple[np.ndarray, torch.Tensor, int]:
    """(picks, flags, threshold) from the kernels on the known features; generators from the seed in the
    strategy's order: masks, k-means, then the fill."""
    z = ctx.data.dataset.x_train.float()[ctx.candidates]
    w, b = ctx.model.head.weight.detach(), ctx.model.head.bias.detach()
    rng = np.random.default_rng(seed)
    g_masks = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    flags, _, t = dropquery_flags(z, w, b, (z @ w.T + b).argmax(1), ctx.budget, g_masks, **kw)
    g_kmeans = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    return ctx.candidates[select_flagged(z, flags, ctx.budget, g_kmeans, rng)], flags, t


def test_yaml_documents_every_constructor_kwarg():
    text = YAML.read_text()
    kw = OmegaConf.to_container(OmegaConf.load(YAML))
    assert kw.pop("name") == "dropquery"
    assert hydra.utils.get_class(kw.pop("_target_")) is DropQuery
    params = inspect.signature(DropQuery.__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value, f"{key}: yaml {value} != default {params[key].default}"
        assert "#" in next(line for line in text.splitlines() if line.startswith(f"{key}:"))


@pytest.mark.parametrize("candidates", [None, SUBSET], ids=["pool", "subset"])
def test_returns_budget_unique_global_candidates(candidates):
    ctx = make_ctx(budget=7, candidates=candidates)
    picks = DropQuery().select(ctx)
    assert len(picks) == 7 and len(np.unique(picks)) == 7 and picks.dtype == np.int64
    assert np.isin(picks, ctx.candidates).all() and not np.isin(picks, ctx.labeled).any()


@pytest.mark.parametrize("candidate_factor", [0.0, 25.0])
def test_equals_the_kernels_run_by_hand(candidate_factor):
    ctx = make_ctx(seed=3, budget=4, candidates=SUBSET)
    strategy = DropQuery(candidate_factor=candidate_factor)
    picks = strategy.select(ctx)
    expected, flags, t = by_hand(ctx, 3, candidate_factor=candidate_factor)
    np.testing.assert_array_equal(picks, expected)
    assert (strategy.last_n_flagged, strategy.last_threshold) == (int(flags.sum()), t)
    assert t == (1 if candidate_factor == 0 else 0)  # 4 x 25 = 100 > the 66 candidates: lowered to 0
    assert strategy.last_n_flagged > 4 and np.isin(picks, ctx.candidates[flags.numpy()]).all()


def test_deterministic_per_seed():
    np.testing.assert_array_equal(DropQuery().select(make_ctx(seed=4)), DropQuery().select(make_ctx(seed=4)))
    assert len({tuple(DropQuery().select(make_ctx(seed=s))) for s in range(4)}) > 1


def test_too_few_flagged_are_all_taken_then_a_random_fill():
    """p = 0.05 drops few coordinates: few predictions change in 2 of 3 draws."""
    ctx = make_ctx(seed=1, budget=10)
    strategy = DropQuery(p_drop=0.05, candidate_factor=0)
    picks = strategy.select(ctx)
    _, flags, _ = by_hand(ctx, 1, p=0.05, candidate_factor=0)
    n_flagged = int(flags.sum())
    assert strategy.last_n_flagged == n_flagged and 0 < n_flagged < 10
    np.testing.assert_array_equal(np.sort(picks[:n_flagged]), ctx.candidates[flags.numpy()])
    assert len(np.unique(picks)) == 10


def test_a_head_without_weights_flags_nothing_and_draws_uniformly():
    ctx = make_ctx(seed=2, budget=6)
    with torch.no_grad():
        ctx.model.head.weight.zero_()
    strategy = DropQuery()
    picks = strategy.select(ctx)
    assert strategy.last_n_flagged == 0
    rng = np.random.default_rng(2)
    rng.integers(0, 2**62)  # masks
    rng.integers(0, 2**62)  # k-means
    np.testing.assert_array_equal(picks, ctx.candidates[rng.choice(len(ctx.candidates), 6, replace=False)])


def test_bad_options_are_one_line_errors(make_cfg):
    for kw, match in [
        ({"p_drop": 1.0}, "p_drop"),
        ({"p_drop": 0.0}, "p_drop"),
        ({"n_draws": 0}, "n_draws"),
        ({"n_draws": 2.5}, "n_draws"),
        ({"candidate_factor": -1}, "candidate_factor"),
    ]:
        with pytest.raises(ALBenchError, match=match):
            DropQuery(**kw)
    with pytest.raises(ALBenchError, match=r"p_drop must be in \(0, 1\)") as err:
        build_strategy(make_cfg("strategy=dropquery", "strategy.p_drop=1.2"))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "strategy=dropquery", "budget.cycles=2", f"paths.results_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (curve_csv,) = tmp_path.glob("digits/mlp/dropquery/**/curve.csv")
    curve = pd.read_csv(curve_csv)
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    assert curve["test_acc"].iloc[-1] > 0.5
