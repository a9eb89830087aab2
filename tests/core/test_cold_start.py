"""Cold start: initial sets chosen from an embedding before any label, on blobs where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from al_bench.cold_start import EMBEDDING_INIT, cold_start_positions, init_strategy_of
from al_bench.errors import ALBenchError


def blobs(
    n_per: int = 30, centres: int = 5, spread: float = 0.05, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray]:
    """``centres`` well-separated Gaussian blobs in 2-D: points [centres * n_per, 2], blob id per point."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, centres, endpoint=False)])
    z = torch.cat([m + spread * torch.randn(n_per, 2, generator=g) for m in means.float()])
    return z, np.repeat(np.arange(centres), n_per)


@pytest.mark.parametrize("method", EMBEDDING_INIT)
def test_one_pick_per_blob_when_the_budget_equals_the_blobs(method):
    z, blob = blobs()
    picks = cold_start_positions(method, z, 5, np.random.default_rng(0), n_clusters=5)
    assert len(set(picks.tolist())) == 5
    assert sorted(blob[picks].tolist()) == [0, 1, 2, 3, 4], "a representative of every mode, none twice"


@pytest.mark.parametrize("method", EMBEDDING_INIT)
def test_unique_deterministic_and_seed_dependent(method):
    z = torch.randn(80, 4, generator=torch.Generator().manual_seed(1))
    a = cold_start_positions(method, z, 12, np.random.default_rng(3), n_clusters=4)
    b = cold_start_positions(method, z, 12, np.random.default_rng(3), n_clusters=4)
    assert np.array_equal(a, b) and len(np.unique(a)) == 12 and a.min() >= 0 and a.max() < 80
    with pytest.raises(ALBenchError, match="cannot choose"):
        cold_start_positions(method, z, 81, np.random.default_rng(0))


def test_typiclust_picks_the_densest_point_of_a_blob():
    # one tight blob with a clear centre point: the most typical point is the one nearest everything else
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1], [0.1, 0.1], [-0.1, -0.1]])
    assert cold_start_positions("typiclust", z, 1, np.random.default_rng(0)).tolist() == [0]


def test_kmeans_picks_the_point_nearest_its_centre():
    z, blob = blobs(n_per=20, centres=3, spread=0.01)
    picks = cold_start_positions("kmeans", z, 3, np.random.default_rng(0))
    for p in picks:
        members = z[blob == blob[p]]
        assert torch.norm(z[p] - members.mean(0)) <= torch.norm(members - members.mean(0), dim=1).max()


def test_init_strategy_defaults_follow_init_balanced():
    assert init_strategy_of(OmegaConf.create({"init_balanced": True})) == "balanced"
    assert init_strategy_of(OmegaConf.create({"init_balanced": False})) == "random"
    assert (
        init_strategy_of(OmegaConf.create({"init_strategy": "typiclust", "init_balanced": True}))
        == "typiclust"
    )
    with pytest.raises(ALBenchError, match="random, balanced, typiclust, probcover, kmeans"):
        init_strategy_of(OmegaConf.create({"init_strategy": "coreset"}))


@pytest.mark.slow
def test_ssl_cold_start_and_typiclust_on_an_encoder_checkpoint(make_cfg, tmp_path):
    """A run whose initial set and TypiClust selections come from an SSL encoder file: the features are
    extracted once into the cache, the curve says which cold start chose the initial set, and a second run
    with another seed reuses the cached features."""
    from al_bench.loop import run
    from al_bench.pretrain.checkpoint import save_encoder
    from al_bench.pretrain.simclr import create_encoder

    torch.manual_seed(0)
    encoder = save_encoder(
        tmp_path / "encoder.pt", create_encoder("test_resnet", 1), arch="test_resnet", in_chans=1,
        input_size=16, mean=[0.0], std=[1.0], config="", epoch=0,
    )  # fmt: skip
    common = ["strategy=typiclust", "strategy.embedding=ssl", "budget.init_strategy=kmeans",
              "budget.init_embedding=ssl", f"embeddings.ssl={encoder}", f"paths.cache_dir={tmp_path}/cache",
              "budget.cycles=1"]  # fmt: skip
    first = run(make_cfg(*common, "seed=0")).curve
    assert (first["init_strategy"] == "kmeans:ssl").all() and first["n_labeled"].tolist() == [8, 12]
    cached = sorted((tmp_path / "cache").rglob("*.pt"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    run(make_cfg(*common, "seed=1"))
    assert sorted((tmp_path / "cache").rglob("*.pt")) == cached and cached[0].stat().st_mtime_ns == mtime
