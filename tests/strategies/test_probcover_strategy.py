"""The probcover strategy on tiny selection contexts whose embedding is the input itself, plus a CLI run."""

from __future__ import annotations

import inspect
import subprocess
import time
from pathlib import Path

import hydra.utils
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from al_bench.build import build_strategy
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.models.base import ALNet
from al_bench.ops.clustering import kmeans
from al_bench.ops.probcover import DELTA_GRID, choose_delta, delta_ball_graph, max_coverage
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.probcover import ProbCover
from tests.conftest import PYTHON, ROOT

YAML = ROOT / "configs" / "strategy" / "probcover.yaml"


class IdentityNet(ALNet):
    """Penultimate features = the input rows [B, D], so the test chooses the embedding."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.feature_dim, self.num_classes = dim, num_classes
        self.head = nn.Linear(dim, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return z


def make_ctx(
    budget: int = 5,
    n: int = 90,
    n_labeled: int = 6,
    seed: int = 0,
    candidates: np.ndarray | None = None,
    num_classes: int = 3,
) -> SelectionContext:
    """Three clumps of directions in 4-D (so they stay apart after L2 normalisation), the first
    ``n_labeled`` rows labeled."""
    g = torch.Generator().manual_seed(123)
    centres = F.normalize(torch.randn(num_classes, 4, generator=g), dim=1) * 3
    y = torch.arange(n) % num_classes
    x = centres[y] + 0.8 * torch.randn(n, 4, generator=g)
    ds = ArrayDataset("tiny", x, y, x[:10], y[:10], num_classes=num_classes)
    data = ALDataModule(ds, batch_size=16, eval_batch_size=32)
    pool = ActivePool(data.pool_indices, size=n)
    pool.label(np.arange(n_labeled), cycle=0)
    net = IdentityNet(4, num_classes)
    return SelectionContext(net, data, pool, budget, 0, np.random.default_rng(seed), candidates=candidates)


def test_yaml_documents_every_constructor_kwarg():
    text = YAML.read_text()
    kw = OmegaConf.to_container(OmegaConf.load(YAML))
    assert kw.pop("name") == "probcover"
    cls = hydra.utils.get_class(kw.pop("_target_"))
    assert cls is ProbCover
    params = inspect.signature(cls.__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value, f"{key}: yaml {value} != default {params[key].default}"
        line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
        assert "#" in line, f"{key} has no comment"


@pytest.mark.parametrize("delta", [None, 0.3, 0.0])
def test_returns_unique_global_candidate_indices(delta):
    cand = np.arange(20, 90, 2)  # a subset of the unlabeled pool (as budget.pool_subset makes)
    ctx = make_ctx(budget=7, candidates=cand)
    picks = ProbCover(delta=delta).select(ctx)
    assert len(picks) == 7 and len(np.unique(picks)) == 7
    assert np.isin(picks, cand).all() and not np.isin(picks, ctx.labeled).any()
    assert picks.dtype == np.int64


@pytest.mark.parametrize("delta", [None, 0.5])
def test_deterministic_per_seed(delta):
    a = ProbCover(delta=delta).select(make_ctx(seed=3))
    b = ProbCover(delta=delta).select(make_ctx(seed=3))
    np.testing.assert_array_equal(a, b)
    assert len({tuple(ProbCover(delta=0.0).select(make_ctx(seed=s))) for s in range(4)}) > 1, (
        "no edges: the picks are random and depend on the seed"
    )


def test_equals_the_kernels_run_by_hand():
    """labeled rows first, then candidates; k-means from ctx.rng's first draw, then the greedy on ctx.rng."""
    ctx = make_ctx(budget=6, seed=4)
    strategy = ProbCover()
    picks = strategy.select(ctx)

    rng = np.random.default_rng(4)
    lab, cand = ctx.labeled, ctx.candidates
    z = F.normalize(ctx.data.dataset.x_train[np.concatenate([lab, cand])].float(), dim=1)
    g = torch.Generator()
    g.manual_seed(int(rng.integers(0, 2**62)))
    _, clusters = kmeans(z, 3, g)
    delta = choose_delta(z, clusters, 0.95, DELTA_GRID)
    assert strategy.last_delta == delta
    src, dst = delta_ball_graph(z, delta)
    n = len(z)
    covered0 = np.zeros(n, bool)
    covered0[dst[src < len(lab)]] = True
    selectable = np.arange(n) >= len(lab)
    pos = max_coverage(src, dst, n, covered0, 6, rng, selectable)
    np.testing.assert_array_equal(picks, np.concatenate([lab, cand])[pos])


def test_first_pick_covers_the_most_points_not_covered_by_the_labeled_set():
    ctx = make_ctx(budget=1, seed=0)
    delta = 0.4
    pick = ProbCover(delta=delta).select(ctx)[0]
    x = F.normalize(ctx.data.dataset.x_train.float(), dim=1)
    d = torch.cdist(x, x).numpy()
    covered = (d[ctx.labeled] < delta).any(0)
    gain = ((d < delta) & ~covered[None, :]).sum(1)
    assert gain[pick] == gain[ctx.candidates].max()


def test_graph_nodes_include_other_unlabeled_points_up_to_max_points():
    cand = np.arange(40, 90)
    ctx = make_ctx(candidates=cand)
    n_pool = len(ctx.pool.pool_indices)
    indices, z, n_lab, n_cand = ProbCover().nodes(ctx)
    assert (n_lab, n_cand) == (6, 50) and len(indices) == len(z) == n_pool
    np.testing.assert_array_equal(np.sort(indices), ctx.pool.pool_indices)
    np.testing.assert_array_equal(indices[:6], ctx.labeled)
    np.testing.assert_array_equal(indices[6:56], cand)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(len(z)))
    indices, z, _, _ = ProbCover(max_points=n_pool - 1).nodes(ctx)
    np.testing.assert_array_equal(indices, np.concatenate([ctx.labeled, cand]))


def test_other_unlabeled_points_count_as_points_to_cover():
    """Candidates far apart, one of them in the middle of a clump of non-candidates: it wins while the clump
    is part of the graph; with the graph restricted to labeled + candidates (max_points) every candidate
    covers only itself and the pick is a random tie."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]] + [[-1.0, 0.05 * i] for i in range(-3, 4)] + [[-1.0, -1.0]])
    y = torch.zeros(len(x), dtype=torch.long)
    data = ALDataModule(ArrayDataset("t", x, y, x[:2], y[:2], num_classes=2), batch_size=4)
    pool = ActivePool(data.pool_indices, size=len(x))
    pool.label(np.array([0]), cycle=0)
    cand = np.array([1, 5, 9])  # 5 = the clump's middle; the rest of the clump is not a candidate

    def pick(seed: int, max_points: int) -> int:
        ctx = SelectionContext(
            IdentityNet(2, 2), data, pool, 1, 0, np.random.default_rng(seed), candidates=cand
        )
        return int(ProbCover(delta=0.2, max_points=max_points).select(ctx)[0])

    assert {pick(s, 50000) for s in range(8)} == {5}
    restricted = {pick(s, 4) for s in range(8)}
    assert len(restricted) > 1 and restricted <= {1, 5, 9}


def test_fixed_embeddings_replace_the_models_features():
    """The clump geometry of test_other_unlabeled_points_count_as_points_to_cover lives only in the run's
    fixed embedding (the model sees shuffled inputs): embedding=pretrained (or ssl) finds the clump's middle,
    embedding=model does not; an unknown kind is refused with the valid ones."""
    geometry = torch.tensor(
        [[1.0, 0.0], [0.0, 1.0]] + [[-1.0, 0.05 * i] for i in range(-3, 4)] + [[-1.0, -1.0]]
    )
    shuffled = geometry[torch.tensor([9, 5, 0, 1, 2, 3, 4, 6, 7, 8])]  # what the model's features say
    y = torch.zeros(len(geometry), dtype=torch.long)
    data = ALDataModule(ArrayDataset("t", shuffled, y, shuffled[:2], y[:2], num_classes=2), batch_size=4)
    pool = ActivePool(data.pool_indices, size=len(geometry))
    pool.label(np.array([0]), cycle=0)
    cand = np.array([1, 5, 9])
    asked: list[str] = []

    def embeddings(kind: str) -> torch.Tensor:
        asked.append(kind)
        return geometry

    def pick(seed: int, embedding: str) -> int:
        ctx = SelectionContext(
            IdentityNet(2, 2), data, pool, 1, 0, np.random.default_rng(seed), candidates=cand,
            embeddings=embeddings,
        )  # fmt: skip
        return int(ProbCover(delta=0.2, embedding=embedding).select(ctx)[0])

    assert {pick(s, "pretrained") for s in range(6)} == {5} and {pick(s, "ssl") for s in range(6)} == {5}
    assert set(asked) == {"pretrained", "ssl"}
    assert {pick(s, "model") for s in range(6)} != {5}
    with pytest.raises(ALBenchError, match="model, pretrained, ssl") as err:
        ProbCover(embedding="dino")
    assert "\n" not in str(err.value)


def test_bad_options_are_one_line_errors(make_cfg):
    with pytest.raises(ALBenchError, match="unknown"):
        ProbCover(embedding="pixels")
    with pytest.raises(ALBenchError, match="alpha"):
        ProbCover(alpha=1.5)
    with pytest.raises(ALBenchError, match="delta"):
        build_strategy(make_cfg("strategy=probcover", "strategy.delta=-1"))


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    start = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-m", "al_bench", "strategy=probcover", "budget.cycles=2", f"paths.results_dir={tmp_path}",
         "variant="],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = pd.read_csv(tmp_path / "digits" / "mlp" / "probcover" / "seed=0" / "curve.csv")
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    print(f"probcover CLI run: {time.perf_counter() - start:.1f} s")
