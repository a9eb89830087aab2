"""MAL: networks, the training step, the selection rule, determinism; runs on digits and Fashion-MNIST."""

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
from omegaconf import OmegaConf

from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.loop import run
from al_bench.models.mlp import MLP
from al_bench.ops.minimax_entropy import cosine_logits, minimax_entropy_loss
from al_bench.pool import ActivePool
from al_bench.strategies.base import SelectionContext
from al_bench.strategies.mal import MAL, _ConvEncoder
from tests.conftest import CONFIGS, PYTHON, ROOT, compose_config

#: test-sized MAL (its defaults train for 10 epochs of labeled + candidates)
FAST = {"epochs": 1, "batch_size": 16, "width": 8}


def make_ctx(
    budget: int = 5,
    n: int = 80,
    n_labeled: int = 10,
    seed: int = 0,
    in_shape: tuple[int, ...] = (1, 8, 8),
    candidates: np.ndarray | None = None,
    num_classes: int = 3,
) -> SelectionContext:
    """Random float data of ``in_shape``, the first ``n_labeled`` rows labeled, an untrained MLP."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *in_shape, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    data = ALDataModule(
        ArrayDataset("tiny", x, y, x[:10], y[:10], num_classes=num_classes), eval_batch_size=32
    )
    pool = ActivePool(data.pool_indices, size=n)
    pool.label(np.arange(n_labeled), cycle=0)
    net = MLP(in_shape, num_classes, hidden=(8,))
    return SelectionContext(net, data, pool, budget, 1, np.random.default_rng(seed), candidates=candidates)


def test_yaml_documents_every_constructor_kwarg():
    text = (CONFIGS / "strategy" / "mal.yaml").read_text()
    kw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "strategy" / "mal.yaml"))
    assert kw.pop("name") == "mal"
    params = inspect.signature(hydra.utils.get_class(kw.pop("_target_")).__init__).parameters
    assert set(kw) == set(params) - {"self"}
    for key, value in kw.items():
        assert params[key].default == value
        assert "#" in next(line for line in text.splitlines() if line.startswith(f"{key}:"))


@pytest.mark.parametrize(
    ("in_shape", "width", "channels"),
    [
        ((1, 8, 8), 16, [16, 32]),
        ((1, 28, 28), 98, [98, 196, 392, 784]),
        ((3, 32, 32), 128, [128, 256, 512, 1024]),
    ],
)
def test_conv_encoder_is_vaals_encoder_sized_to_the_image(in_shape, width, channels):
    assert MAL().encoder_width(in_shape) == width
    enc = _ConvEncoder(in_shape, latent_dim=7, width=width)
    convs = [m.out_channels for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == channels
    assert enc(torch.randn(2, *in_shape)).shape == (2, 7)


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (20,)])
@pytest.mark.parametrize("subset", [False, True])
def test_budget_unique_candidates_same_seed_same_picks_global_rng_untouched(in_shape, subset):
    candidates = np.arange(10, 80, 2) if subset else None
    picks = []
    for _ in range(2):
        ctx = make_ctx(budget=6, seed=5, in_shape=in_shape, candidates=candidates)
        state = torch.random.get_rng_state()
        picks.append(MAL(**FAST).select(ctx))
        assert torch.equal(state, torch.random.get_rng_state())
    assert picks[0].dtype == np.int64 and picks[0].shape == (6,) and len(np.unique(picks[0])) == 6
    assert np.isin(picks[0], ctx.candidates).all()
    np.testing.assert_array_equal(picks[0], picks[1])
    other = MAL(**FAST).select(make_ctx(budget=6, seed=6, in_shape=in_shape, candidates=candidates))
    assert not np.array_equal(np.sort(other), np.sort(picks[0])), "another seed, other networks"


def test_selection_is_the_highest_entropy_among_the_most_likely_unlabeled(monkeypatch):
    """10 candidates (global 10..19), budget 2, shortlist 4 = the highest p(unlabeled): positions 0..3.
    The highest entropy overall (9) is not on the shortlist; within it, 1 and 3 have the highest entropy."""
    ctx = make_ctx(budget=2, n=20, n_labeled=10)
    p_unlabeled = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    entropy = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.3, 0.3, 0.3, 0.3, 0.3, 2.0])
    monkeypatch.setattr(MAL, "_train", lambda *a: None)
    monkeypatch.setattr(MAL, "_candidate_scores", lambda *a: (p_unlabeled, entropy))
    assert sorted(MAL(shortlist_factor=2.0).select(ctx).tolist()) == [11, 13]
    assert sorted(MAL(shortlist_factor=1.0).select(ctx).tolist()) == [10, 11]  # discriminator only
    assert sorted(MAL(shortlist_factor=5.0).select(ctx).tolist()) == [11, 19]  # entropy only


def test_one_training_iteration_updates_encoder_prototypes_and_discriminator():
    ctx = make_ctx(n=40, n_labeled=16)
    mal = MAL(epochs=1, batch_size=40, width=8)  # (16 + 24) * 1 // 40 = 1 iteration
    torch.manual_seed(0)
    encoder, prototypes, disc = mal.build(ctx.data.in_shape, ctx.data.num_classes)
    before = [p.detach().clone() for p in (*encoder.parameters(), prototypes, *disc.parameters())]
    g = torch.Generator().manual_seed(0)
    mal._train(ctx, encoder, prototypes, disc, g, torch.Generator().manual_seed(1))
    after = [p.detach() for p in (*encoder.parameters(), prototypes, *disc.parameters())]
    n_enc = len(list(encoder.parameters()))
    changed = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert any(changed[:n_enc]) and changed[n_enc] and any(changed[n_enc + 1 :])


def test_step_losses_reverse_the_entropy_gradient_for_the_encoder_only():
    """The entropy term's gradient in MAL's task loss (task(weight 1) - task(weight 0), adversary off) equals
    the plain -H gradient for the prototypes (the classifier maximises H) and its negative for the encoder
    (the encoder minimises H): the reversal sits between them."""
    torch.manual_seed(0)
    xl, yl, xu = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]), torch.randn(8, 1, 8, 8)
    grads = {}
    for weight in (0.0, 1.0):
        mal = MAL(width=8, entropy_weight=weight, adversary_param=0.0)
        torch.manual_seed(0)
        encoder, prototypes, disc = mal.build((1, 8, 8), 3)
        encoder.eval()  # BN on running statistics: the same function in every pass
        task = mal.step_losses(encoder, prototypes, disc, xl, yl, xu)[0]
        grads[weight] = torch.autograd.grad(task, [prototypes, encoder.net[-1].weight])
        plain = minimax_entropy_loss(cosine_logits(encoder(xu), prototypes, mal.temperature))
        reference = torch.autograd.grad(plain, [prototypes, encoder.net[-1].weight])
    torch.testing.assert_close(grads[1.0][0] - grads[0.0][0], reference[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1.0][1] - grads[0.0][1], -reference[1], atol=1e-5, rtol=1e-4)
    assert reference[1].abs().sum() > 0


def test_bad_options_are_one_line_errors():
    for kwargs, match in [({"width": 0}, "width"), ({"shortlist_factor": 0.5}, "shortlist_factor"),
                          ({"temperature": 0.0}, "temperature")]:  # fmt: skip
        with pytest.raises(ALBenchError, match=match):
            MAL(**kwargs)
    with pytest.raises(ALBenchError, match="labeled and unlabeled"):
        MAL(**FAST).select(make_ctx(n_labeled=0))


@pytest.mark.slow
def test_cli_two_cycles_on_the_default_digits(tmp_path: Path):
    start = time.perf_counter()
    cmd = [PYTHON, "-m", "al_bench", "strategy=mal", "budget.cycles=2"]
    proc = subprocess.run(
        [*cmd, f"paths.results_dir={tmp_path}", "variant="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = pd.read_csv(tmp_path / "digits" / "mlp" / "mal" / "seed=0" / "curve.csv")
    assert curve["n_labeled"].tolist() == [20, 30, 40]
    print(f"mal CLI run: {time.perf_counter() - start:.1f} s, select_s {curve['select_s'].tolist()}")


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} absent (apt-get install dataset-fashion-mnist)")
def test_one_cycle_on_fashion_mnist(tmp_path: Path):
    cfg = compose_config(
        [
            "dataset=fashion_mnist",
            f"dataset.data_dir={FASHION}",
            "model=dbal_cnn",
            "strategy=mal",
            "strategy.epochs=1",
            "strategy.width=8",
            "budget.init_size=20",
            "budget.query_size=10",
            "budget.cycles=1",
            "budget.pool_subset=300",
            "trainer.max_epochs=1",
            "verbose=false",
        ],
        tmp_path,
    )
    result = run(cfg)
    selected = pd.read_csv(result.run_dir / "selected.csv")
    assert len(selected[selected.cycle == 1]) == 10 and selected["index"].is_unique
