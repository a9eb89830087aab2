"""The strategy.posterior axis: the registry, and every source's [N, T, C] contract on real (tiny) fits."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from al_bench import loop
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.posteriors.sources import SOURCES, build_source
from al_bench.strategies.bayesian import BALD, BatchBALD, MCEntropy, MeanStd, VariationRatio
from al_bench.strategies.committee import ConsensusEntropy, KLDivergence, VoteEntropy
from al_bench.strategies.epig import EPIG
from tests.posteriors.posterior_cases import LABELED, N_CLASSES, N_TRAIN, context

T = 3
OPTIONS = {"members": T, "base_fraction": 0.5, "member_fraction": 0.5}


def test_unknown_names_and_options_list_the_valid_ones():
    with pytest.raises(ALBenchError, match="valid: mc_dropout, ensemble, dee, snapshot, split_head, bbb"):
        build_source("laplace")
    with pytest.raises(
        ALBenchError, match=r"unknown strategy.posterior_options temperature; valid: .*members"
    ):
        build_source("ensemble", {"temperature": 2})
    with pytest.raises(ALBenchError, match="unknown strategy.posterior"):
        BALD(posterior="swag")


def test_each_source_takes_its_own_options_and_null_means_its_default():
    dee = build_source("dee", {"base_fraction": 0.3, "member_fraction": None, "prior_sigma": 2.0})
    assert (dee.base_fraction, dee.member_fraction) == (0.3, 0.4)
    assert build_source("bbb", {"prior_sigma": 2.0, "base_fraction": 0.3}).prior_sigma == 2.0


def test_only_mc_dropout_needs_dropout_and_t_follows_the_source():
    assert BALD().needs_mc_dropout and BALD().n_functions == 20
    ensemble = BALD(posterior="ensemble", posterior_options={"members": 4})
    assert not ensemble.needs_mc_dropout and ensemble.n_functions == 4
    assert BALD(posterior="bbb").n_functions == 20  # weight samples: n_samples
    assert VoteEntropy(posterior="mc_dropout").needs_mc_dropout and not VoteEntropy().needs_mc_dropout


@pytest.mark.parametrize("name", list(SOURCES))
def test_rows_sum_to_one_are_consistent_across_index_sets_and_deterministic_per_seed(tmp_path, name):
    source = build_source(name, OPTIONS)
    ctx = context(tmp_path, seed=3)
    probs = ctx.posterior_probs(source, T)
    assert probs.shape == (N_TRAIN - len(LABELED), T, N_CLASSES) and probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
    assert probs.std(1).max() > 1e-4, "T different functions"
    some = ctx.candidates[[5, 0, 17]]
    torch.testing.assert_close(
        ctx.posterior_probs(source, T, indices=some), probs[[5, 0, 17]], rtol=0, atol=1e-6
    )
    again = context(tmp_path, seed=3).posterior_probs(build_source(name, OPTIONS), T)
    assert torch.equal(probs, again), "same seed, same functions"


def test_mc_dropout_source_is_mc_probs():
    from tests.conftest import random_selection_context
    from tests.posteriors.posterior_cases import N_FEATURES, mlp

    def ctx():
        return random_selection_context(mlp(0), N_TRAIN, N_FEATURES, N_CLASSES, LABELED, 4, seed=1)

    assert torch.equal(ctx().posterior_probs(build_source("mc_dropout"), 7), ctx().mc_probs(7))


ACQUISITIONS = [
    BALD,
    VariationRatio,
    MeanStd,
    MCEntropy,
    BatchBALD,
    EPIG,
    VoteEntropy,
    ConsensusEntropy,
    KLDivergence,
]


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_acquisition_runs_on_every_source(tmp_path, name):
    ctx = context(tmp_path, seed=5)
    bayesian_options = {**OPTIONS, "include_trained_model": True}
    for cls in ACQUISITIONS:
        if cls in (VoteEntropy, ConsensusEntropy, KLDivergence):
            options = {k: v for k, v in OPTIONS.items() if k != "members"}
            strategy = cls(committee_size=T, posterior=name, posterior_options=options)
        else:
            strategy = cls(n_samples=T, posterior=name, posterior_options=bayesian_options)
        picks = strategy.select(ctx)
        assert len(np.unique(picks)) == ctx.budget and np.isin(picks, ctx.candidates).all(), cls.__name__


def test_epig_scores_candidates_and_targets_under_the_same_functions_of_any_source(tmp_path):
    """Targets go through the functions the candidates' source drew (no member is trained twice) and the
    score is epig_from_probs of the two, deterministic per seed, for sources that train networks."""
    from al_bench.ops.epig import epig_from_probs

    for name in ("ensemble", "snapshot"):
        ctx = context(tmp_path / name, seed=7)
        strategy = EPIG(n_samples=T, n_target_inputs=None, posterior=name, posterior_options=OPTIONS)
        probs = strategy.posterior_probs(ctx)  # [N, T, C]
        assert probs.shape[1] == T
        again = ctx.posterior_probs(strategy.source, T, ctx.candidates)  # no new members trained
        assert torch.equal(again, probs)
        targets = strategy.target_indices(ctx)
        expected = epig_from_probs(probs, ctx.posterior_probs(strategy.source, T, targets))
        ctx2 = context(tmp_path / (name + "_again"), seed=7)  # same seed: same members, same draw of targets
        assert torch.allclose(
            EPIG(n_samples=T, n_target_inputs=None, posterior=name, posterior_options=OPTIONS).score(ctx2),
            expected,
        )


def test_committee_refuses_members_and_runs_without_fit_model_only_where_none_is_trained(tmp_path):
    with pytest.raises(ALBenchError, match="committee_size"):
        VoteEntropy(posterior_options={"members": 3})
    ctx = context(tmp_path)
    ctx.fit_model = None
    assert len(VoteEntropy(committee_size=3, posterior="mc_dropout").select(ctx)) == ctx.budget
    with pytest.raises(ALBenchError, match="fit_model"):
        BALD(posterior="snapshot").select(ctx)


def test_a_fit_model_without_options_is_refused_in_one_line(tmp_path):
    ctx = context(tmp_path)
    real = ctx.fit_model
    ctx.fit_model = lambda seed: real(seed)
    with pytest.raises(ALBenchError, match="fit_model\\(seed, \\*\\*options\\)"):
        BALD(posterior="dee").select(ctx)
    BALD(posterior="ensemble", posterior_options={"members": 2}).select(ctx)  # needs no options


LOOP_TAKES_OPTIONS = any(
    p.kind is inspect.Parameter.VAR_KEYWORD
    for p in inspect.signature(loop._fit_committee_member).parameters.values()
)


@pytest.mark.slow
@pytest.mark.skipif(
    not LOOP_TAKES_OPTIONS, reason="al_bench.loop._fit_committee_member forwards no **options yet"
)
@pytest.mark.parametrize("name", list(SOURCES))
def test_cli_pair_runs_through_the_loop(make_cfg, tmp_path, name):
    cfg = make_cfg(
        "strategy=bald",
        f"strategy.posterior={name}",
        "strategy.n_samples=4",
        "strategy.posterior_options.members=2",
        "budget.cycles=1",
        "trainer.max_epochs=2",
    )
    result = run(cfg)
    assert len(result.curve) == 2 and result.curve["select_s"].notna().sum() == 1
