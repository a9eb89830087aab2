"""The alfamix strategy on tiny selection contexts whose penultimate features are the inputs themselves (so
the test knows them), the kernels run by hand, the edge cases, the yaml, and a CLI run on the default
digits."""

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
from al_bench.ops.alfamix import alfamix_flags, alfamix_flags_learned, class_anchors
from al_bench.ops.candidate_kmeans import select_flagged
from al_bench.strategies.alfamix import AlfaMix
from al_bench.strategies.base import SelectionContext
from tests.conftest import PYTHON, ROOT, random_selection_context

YAML = ROOT / "configs" / "strategy" / "alfamix.yaml"
N_TRAIN, N_FEATURES, N_CLASSES = 120, 6, 3
LABELED = np.arange(0, N_TRAIN, 10)
SUBSET = np.setdiff1d(np.arange(N_TRAIN), LABELED)[::2]


class IdentityNet(ALNet):
    """Penultimate features = the inputs [B, D]; a seeded linear head (``scale`` multiplies its weight)."""

    def __init__(self, dim: int, num_classes: int, scale: float = 1.0, seed: int = 7) -> None:
        super().__init__()
        self.feature_dim, self.num_classes = dim, num_classes
        self.head = nn.Linear(dim, num_classes)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.head.weight.copy_(scale * torch.randn(num_classes, dim, generator=g))
            self.head.bias.copy_(0.1 * torch.randn(num_classes, generator=g))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return z


def make_ctx(
    seed: int = 0, budget: int = 5, candidates: np.ndarray | None = None, scale: float = 1.0
) -> SelectionContext:
    net = IdentityNet(N_FEATURES, N_CLASSES, scale)
    return random_selection_context(
        net, N_TRAIN, N_FEATURES, N_CLASSES, LABELED, budget, seed, candidates=candidates
    )


def by_hand(ctx: SelectionContext, seed: int, alpha_cap: float = 0.2) -> tuple[np.ndarray, torch.Tensor]:
    """(picks, flags): the kernels on the known features, generators drawn from the seed in the strategy's
    order (k-means generator first, then the fill)."""
    x = ctx.data.dataset.x_train.float()
    z, zl = x[ctx.candidates], x[ctx.labeled]
    w, b = ctx.model.head.weight.detach(), ctx.model.head.bias.detach()
    anchors = class_anchors(zl, ctx.data.dataset.y_train[ctx.labeled], N_CLASSES)
    flags, _ = alfamix_flags(z, z @ w.T + b, anchors, w, alpha_cap, stop_above=ctx.budget)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    return ctx.candidates[select_flagged(z, flags, ctx.budget, g, rng)], flags


def by_hand_learned(ctx: SelectionContext, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """As :func:`by_hand` for ``alpha: learned``: the start alphas' generator is drawn before k-means'."""
    x = ctx.data.dataset.x_train.float()
    z, zl = x[ctx.candidates], x[ctx.labeled]
    w, b = ctx.model.head.weight.detach(), ctx.model.head.bias.detach()
    anchors = class_anchors(zl, ctx.data.dataset.y_train[ctx.labeled], N_CLASSES)
    rng = np.random.default_rng(seed)
    g_alpha = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    flags, _ = alfamix_flags_learned(z, z @ w.T + b, anchors, w, b, g_alpha, 0.03125, stop_above=ctx.budget)
    g = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    return ctx.candidates[select_flagged(z, flags, ctx.budget, g, rng)], flags


def test_yaml_documents_every_constructor_kwarg():
    text = YAML.read_text()
    kw = OmegaConf.to_container(OmegaConf.load(YAML))
    assert kw.pop("name") == "alfamix"
    assert hydra.utils.get_class(kw.pop("_target_")) is AlfaMix
    params = inspect.signature(AlfaMix.__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value, f"{key}: yaml {value} != default {params[key].default}"
        assert "#" in next(line for line in text.splitlines() if line.startswith(f"{key}:"))


@pytest.mark.parametrize("candidates", [None, SUBSET], ids=["pool", "subset"])
def test_returns_budget_unique_global_candidates(candidates):
    ctx = make_ctx(budget=7, candidates=candidates)
    picks = AlfaMix().select(ctx)
    assert len(picks) == 7 and len(np.unique(picks)) == 7 and picks.dtype == np.int64
    assert np.isin(picks, ctx.candidates).all() and not np.isin(picks, ctx.labeled).any()


def test_equals_the_kernels_run_by_hand_and_picks_only_inconsistent_candidates():
    ctx = make_ctx(seed=3, budget=5, candidates=SUBSET)
    strategy = AlfaMix()
    picks = strategy.select(ctx)
    expected, flags = by_hand(ctx, 3)
    np.testing.assert_array_equal(picks, expected)
    assert strategy.last_n_flagged == int(flags.sum()) > 5  # k-means over the flagged ones
    assert np.isin(picks, ctx.candidates[flags.numpy()]).all()


def test_learned_alpha_equals_the_kernels_run_by_hand():
    ctx = make_ctx(seed=5, budget=5, candidates=SUBSET)
    strategy = AlfaMix(alpha="learned")
    assert strategy.alpha_cap == 0.03125
    picks = strategy.select(ctx)
    expected, flags = by_hand_learned(ctx, 5)
    np.testing.assert_array_equal(picks, expected)
    assert strategy.last_n_flagged == int(flags.sum()) > 5
    np.testing.assert_array_equal(picks, AlfaMix(alpha="learned").select(make_ctx(seed=5, candidates=SUBSET)))


def test_deterministic_per_seed():
    a = AlfaMix().select(make_ctx(seed=4))
    np.testing.assert_array_equal(a, AlfaMix().select(make_ctx(seed=4)))
    assert len({tuple(AlfaMix().select(make_ctx(seed=s))) for s in range(4)}) > 1


def test_few_inconsistent_candidates_are_all_taken_then_a_random_fill():
    """A small head weight (x 0.015, the bias unchanged) makes the mixes' logit changes small next to the
    margins: 8 flips even at cap 1, for a budget of 10."""
    ctx = make_ctx(seed=1, budget=10, scale=0.015)
    strategy = AlfaMix()
    picks = strategy.select(ctx)
    _, flags = by_hand(ctx, 1)
    n_flagged = int(flags.sum())
    assert (
        strategy.last_n_flagged == n_flagged and 0 < n_flagged < 10 and strategy.last_cap == pytest.approx(1)
    )
    np.testing.assert_array_equal(np.sort(picks[:n_flagged]), ctx.candidates[flags.numpy()])
    assert len(np.unique(picks)) == 10


def test_a_head_without_weights_flags_nothing_and_draws_uniformly():
    ctx = make_ctx(seed=2, budget=6)
    with torch.no_grad():
        ctx.model.head.weight.zero_()
    picks = AlfaMix().select(ctx)
    rng = np.random.default_rng(2)
    rng.integers(0, 2**62)  # the k-means generator's draw
    np.testing.assert_array_equal(picks, ctx.candidates[rng.choice(len(ctx.candidates), 6, replace=False)])


def test_bad_options_are_one_line_errors(make_cfg):
    with pytest.raises(ALBenchError, match="alpha_cap"):
        AlfaMix(alpha_cap=0)
    with pytest.raises(ALBenchError, match="unknown: choose one of"):
        AlfaMix(alpha="search")
    with pytest.raises(ALBenchError, match="learn_iters"):
        AlfaMix(learn_iters=0)
    with pytest.raises(ALBenchError, match=r"alpha_cap must be in \(0, 1\]") as err:
        build_strategy(make_cfg("strategy=alfamix", "strategy.alpha_cap=1.5"))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "strategy=alfamix", "budget.cycles=2", f"paths.results_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (curve_csv,) = tmp_path.glob("digits/mlp/alfamix/**/curve.csv")
    curve = pd.read_csv(curve_csv)
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    assert curve["test_acc"].iloc[-1] > 0.5
