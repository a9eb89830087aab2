"""Suggestive Annotation: bootstrap members, top-K by disagreement, greedy max-cover; runs on real data."""

from __future__ import annotations

import inspect
import math
import subprocess
import time
from pathlib import Path

import hydra.utils
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.mlp import MLP
from al_bench.strategies.suggestive_annotation import SuggestiveAnnotation
from tests.conftest import CONFIGS, PYTHON, ROOT, compose_config, random_selection_context

N_TRAIN, N_FEATURES, N_CLASSES = 60, 5, 3
LABELED = np.arange(0, N_TRAIN, 6)  # 10 labeled


def _mlp(seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP((N_FEATURES,), N_CLASSES, hidden=(8,))


class BootstrapFit:
    """A fake ``fit_model(seed, indices)``: a seed-dependent untrained MLP; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, np.ndarray]] = []

    def __call__(self, seed: int, indices: np.ndarray | None = None) -> MLP:
        self.calls.append((seed, np.asarray(indices)))
        return _mlp(seed % 1000 + 1)


def _context(seed: int = 0, budget: int = 4, fit_model=None, candidates=None):
    return random_selection_context(
        _mlp(0),
        N_TRAIN,
        N_FEATURES,
        N_CLASSES,
        LABELED,
        budget,
        seed,
        candidates=candidates,
        fit_model=fit_model,
    )


def test_yaml_documents_every_constructor_kwarg():
    text = (CONFIGS / "strategy" / "suggestive_annotation.yaml").read_text()
    kw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "strategy" / "suggestive_annotation.yaml"))
    assert kw.pop("name") == "suggestive_annotation"
    params = inspect.signature(hydra.utils.get_class(kw.pop("_target_")).__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value
        assert "#" in next(line for line in text.splitlines() if line.startswith(f"{key}:"))


@pytest.mark.parametrize("subset", [False, True])
def test_budget_unique_candidates_and_same_seed_same_picks(subset):
    candidates = np.flatnonzero(np.arange(N_TRAIN) % 6 != 0)[::2] if subset else None
    picks = [SuggestiveAnnotation().select(_context(3, 4, BootstrapFit(), candidates)) for _ in range(2)]
    ctx = _context(3, 4, BootstrapFit(), candidates)
    assert picks[0].dtype == np.int64 and picks[0].shape == (4,) and len(np.unique(picks[0])) == 4
    assert np.isin(picks[0], ctx.candidates).all()
    np.testing.assert_array_equal(picks[0], picks[1])


def test_members_train_on_bootstrap_resamples_of_the_labeled_set_with_seeds_from_ctx_rng():
    fit = BootstrapFit()
    SuggestiveAnnotation(n_members=3).select(_context(fit_model=fit))
    assert len(fit.calls) == 3
    rng = np.random.default_rng(0)  # the context's rng: the seeds, then one resample per member
    seeds = rng.integers(0, 2**62, size=3)
    for (seed, indices), expected_seed in zip(fit.calls, seeds):
        assert seed == int(expected_seed)
        np.testing.assert_array_equal(indices, LABELED[rng.integers(0, len(LABELED), size=len(LABELED))])
    resamples = [indices for _, indices in fit.calls]
    assert all(len(r) == len(LABELED) and np.isin(r, LABELED).all() for r in resamples)
    assert any(len(np.unique(r)) < len(r) for r in resamples), "drawn with replacement"
    assert not np.array_equal(resamples[0], resamples[1])


def test_disagreement_shortlist_then_max_cover_picks_one_per_cluster(monkeypatch):
    """Candidates (global 4..11 -> positions 0..7) in two feature clusters: A at ~0 degrees (positions 0, 1,
    4, 5, 6), B at ~90 degrees (2, 3, 7). Disagreement ranks 0 > 1 > 2 > 3 > the rest (0). Top-K (K = 4) is
    {0, 1, 2, 3}; plain top-2 disagreement would take the near-duplicates 0 and 1, max-cover takes one
    from each cluster: first the point nearest the pool's mean direction (1, at 1 degree, the mean being
    ~31 degrees), then the centre of B (2, at exactly 90 degrees with 7)."""
    ctx = random_selection_context(
        _mlp(0), 12, N_FEATURES, N_CLASSES, np.arange(4), 2, fit_model=BootstrapFit()
    )
    degrees = [0.0, 1.0, 90.0, 93.0, 2.0, -2.0, 0.5, 90.0]
    feats = torch.tensor([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees])
    ctx._cache[("outputs", "candidates")] = (torch.zeros(8, N_CLASSES), feats)
    spread = torch.tensor([0.5, 0.4, 0.3, 0.2, 0, 0, 0, 0])  # member probs of class 0: 0.5 +- spread
    p0 = torch.stack([0.5 + spread, 0.5 - spread]).clamp(0, 1)
    member_probs = torch.stack([p0, 1 - p0, torch.zeros_like(p0)], -1)  # [M=2, N=8, C=3]
    monkeypatch.setattr(SuggestiveAnnotation, "member_probs", lambda self, ctx: member_probs)
    picks = SuggestiveAnnotation(n_members=2, top_k_factor=2.0).select(ctx)
    np.testing.assert_array_equal(picks, [5, 6])


def test_top_k_factor_one_is_plain_disagreement_top_k(monkeypatch):
    ctx = _context(budget=3, fit_model=BootstrapFit())
    member_probs = SuggestiveAnnotation(n_members=2).member_probs(
        _context(budget=3, fit_model=BootstrapFit())
    )
    monkeypatch.setattr(SuggestiveAnnotation, "member_probs", lambda self, ctx: member_probs)
    picks = SuggestiveAnnotation(n_members=2, top_k_factor=1.0).select(ctx)
    var = member_probs.var(0, unbiased=False).mean(-1)
    assert set(picks.tolist()) == set(ctx.candidates[np.argsort(-var.numpy())[:3]].tolist())


def test_bad_options_and_missing_hooks_are_one_line_errors():
    with pytest.raises(ALBenchError, match="n_members"):
        SuggestiveAnnotation(n_members=1)
    with pytest.raises(ALBenchError, match="top_k_factor"):
        SuggestiveAnnotation(top_k_factor=0.5)
    with pytest.raises(ALBenchError, match="no fit_model"):
        SuggestiveAnnotation().select(_context())


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    start = time.perf_counter()
    cmd = [PYTHON, "-m", "al_bench", "strategy=suggestive_annotation", "budget.cycles=2"]
    proc = subprocess.run(
        [*cmd, f"paths.results_dir={tmp_path}", "variant="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = pd.read_csv(tmp_path / "digits" / "mlp" / "suggestive_annotation" / "seed=0" / "curve.csv")
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    print(f"suggestive_annotation CLI run: {time.perf_counter() - start:.1f} s")


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} absent (apt-get install dataset-fashion-mnist)")
def test_one_cycle_on_fashion_mnist(tmp_path: Path):
    cfg = compose_config(
        [
            "dataset=fashion_mnist",
            f"dataset.data_dir={FASHION}",
            "model=dbal_cnn",
            "strategy=suggestive_annotation",
            "strategy.n_members=2",
            "budget.init_size=20",
            "budget.query_size=10",
            "budget.cycles=1",
            "budget.pool_subset=500",
            "trainer.max_epochs=1",
            "verbose=false",
        ],
        tmp_path,
    )
    result = run(cfg)
    selected = pd.read_csv(result.run_dir / "selected.csv")
    assert len(selected[selected.cycle == 1]) == 10 and selected["index"].is_unique
