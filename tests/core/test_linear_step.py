"""The fused linear-head step (trainer.engine=fused, what auto picks for frozen heads) is autograd's step bit
for bit: losses, logits, weights, gradients and Adam's state after many steps, whole fits with callbacks and
early stopping, whole frozen runs; and it refuses, or leaves to autograd, every fit it does not reproduce."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.linear_step import LinearHeadStep, unsupported
from al_bench.loop import run
from al_bench.models.feature_head import FeatureHead
from al_bench.module import ALModule, StopAtTrainAccuracy
from al_bench.plain_fit import plain_fit
from tests.conftest import assert_same_runs_with_engines
from tests.representations.test_frozen_runs import FROZEN

CPU = torch.device("cpu")


def _module(p: float, optimizer=None, hidden=()) -> ALModule:
    torch.manual_seed(0)
    net = FeatureHead((48,), 5, hidden=hidden, dropout=p)
    return ALModule(net, optimizer or partial(torch.optim.Adam, lr=3e-3))


def _batches(n: int = 70, batch: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 48, generator=g), torch.randint(0, 5, (n,), generator=g)
    perm = torch.randperm(n, generator=g)
    return [(x[perm[s : s + batch]], y[perm[s : s + batch]], perm[s : s + batch]) for s in range(0, n, batch)]


def _autograd_step(module: ALModule, optimizer: torch.optim.Optimizer, batch):
    loss, per_sample, logits = module.loss_and_logits(batch, 0, 1)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), per_sample.detach(), logits.detach()


def _assert_same_state(a: ALModule, opt_a, b: ALModule, opt_b) -> None:
    for (name, pa), pb in zip(a.net.named_parameters(), b.net.parameters()):
        assert torch.equal(pa, pb), name
        assert torch.equal(pa.grad, pb.grad), name
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a.state[pa][key], opt_b.state[pb][key]), (name, key)


OPTIMIZERS = {
    "adam": partial(torch.optim.Adam, lr=3e-3),
    "adam_weight_decay_betas_eps": partial(torch.optim.Adam, lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                                           weight_decay=1e-3),
}  # fmt: skip


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_fused_steps_equal_autograd_steps_bit_for_bit(p, opt):
    """60 steps over batches of 32, 32 and a last one of 6, dropout masks drawn from torch's seed."""
    ref, fused = _module(p, OPTIMIZERS[opt]), _module(p, OPTIMIZERS[opt])
    opt_ref, opt_fused = ref.configure_optimizers(), fused.configure_optimizers()
    ref.train(), fused.train()
    assert unsupported(fused, opt_fused, None, CPU) == ""
    step = LinearHeadStep(fused, opt_fused)
    batches = _batches()
    torch.manual_seed(7)
    expected = [_autograd_step(ref, opt_ref, b) for _ in range(20) for b in batches]
    after_ref = torch.randint(0, 2**31, ())  # the generator advanced the same way (one seed per mask)
    torch.manual_seed(7)
    got = [step(b) for _ in range(20) for b in batches]
    assert torch.equal(torch.randint(0, 2**31, ()), after_ref)
    for e, g in zip(expected, got):
        for u, v in zip(e, g):
            assert torch.equal(u, v)
    _assert_same_state(ref, opt_ref, fused, opt_fused)
    assert not torch.equal(ref.net.head.weight, _module(p).net.head.weight)  # it did train


def test_fused_step_reads_each_groups_hyperparameters_every_step():
    """Per-group lr / weight decay (L2 groups) and an lr changed between steps, as a scheduler would."""

    def groups(params):
        w, b = params
        return torch.optim.Adam([{"params": [w], "weight_decay": 0.01}, {"params": [b], "lr": 0.05}], lr=1e-3)

    ref, fused = _module(0.2, groups), _module(0.2, groups)
    opt_ref, opt_fused = ref.configure_optimizers(), fused.configure_optimizers()
    ref.train(), fused.train()
    step = LinearHeadStep(fused, opt_fused)
    for seed, b in enumerate(_batches() * 3):
        for opt in (opt_ref, opt_fused):
            opt.param_groups[0]["lr"] = 1e-3 * (seed + 1)
        torch.manual_seed(seed)
        _autograd_step(ref, opt_ref, b)
        torch.manual_seed(seed)
        step(b)
    _assert_same_state(ref, opt_ref, fused, opt_fused)


def test_eval_mode_dropout_is_skipped_as_in_the_module():
    ref, fused = _module(0.5), _module(0.5)
    opt_ref, opt_fused = ref.configure_optimizers(), fused.configure_optimizers()
    ref.eval(), fused.eval()
    step = LinearHeadStep(fused, opt_fused)
    for b in _batches():
        _autograd_step(ref, opt_ref, b)
        step(b)
    _assert_same_state(ref, opt_ref, fused, opt_fused)


def _data(n: int = 90) -> ALDataModule:
    g = torch.Generator().manual_seed(3)
    ds = ArrayDataset(
        "features", torch.randn(n, 48, generator=g), torch.randint(0, 5, (n,), generator=g),
        torch.randn(20, 48, generator=g), torch.randint(0, 5, (20,), generator=g), num_classes=5,
    )  # fmt: skip
    return ALDataModule(ds, batch_size=16)


@pytest.mark.parametrize("stop", [None, 0.5])
def test_plain_fit_with_fused_steps_equals_autograd_fit(stop):
    """Whole fits: weights, epochs run, epoch accuracy and per-epoch pool predictions (a callback that puts
    the head in eval mode between steps), with and without stopping at a training accuracy."""
    data = _data()
    fits = {}
    for fused in ("off", "require"):
        module = _module(0.3)
        recorder = PoolPredictionRecorder(data, np.arange(60, 90))
        callbacks = [recorder] + ([StopAtTrainAccuracy(stop)] if stop else [])
        gen = torch.Generator().manual_seed(5)
        torch.manual_seed(11)
        trainer = plain_fit(
            module, data.train_batches(np.arange(60), gen), CPU, 25, 0, callbacks, fused=fused
        )
        fits[fused] = (module, trainer, recorder.result()["history"])
    (a, ta, ha), (b, tb, hb) = fits["off"], fits["require"]
    assert all(torch.equal(u, v) for u, v in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    assert ta.current_epoch == tb.current_epoch and a.epoch_acc == b.epoch_acc
    assert torch.equal(ha, hb)
    if stop:
        assert tb.current_epoch < 25


def _clip(m):
    m.gradient_clip_val = 1.0


def _hook(m):
    m.net.head.register_forward_hook(lambda *a: None)


REFUSED = {
    "clipping": (lambda: _module(0.2), _clip, None, "gradient clipping"),
    "scheduler": (lambda: _module(0.2), None, "sched", "scheduler"),
    "mlp_head": (lambda: _module(0.2, hidden=(8,)), None, None, "not a linear FeatureHead"),
    "sgd": (lambda: _module(0.2, partial(torch.optim.SGD, lr=0.1)), None, None, "optimizer SGD"),
    "amsgrad": (lambda: _module(0.2, partial(torch.optim.Adam, amsgrad=True)), None, None, "amsgrad"),
    "aux": (lambda: ALModule(FeatureHead((48,), 5), torch.optim.Adam, aux=nn.Linear(2, 2)), None, None,
            "auxiliary"),
    "hook": (lambda: _module(0.2), _hook, None, "forward hooks"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_fits_are_named_and_refused_or_left_to_autograd(case):
    build, tweak, sched, reason = REFUSED[case]
    module = build()
    if tweak:
        tweak(module)
    optimizer = module.configure_optimizers()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1) if sched else None
    assert reason in unsupported(module, optimizer, scheduler, CPU)
    data = _data()
    batches = data.train_batches(np.arange(40), torch.Generator().manual_seed(0))
    if sched or case == "aux":
        return  # plain_fit builds its own optimizer and scheduler from the module; covered above
    with pytest.raises(ALBenchError, match="trainer.engine=fused trains a linear head"):
        plain_fit(build() if not tweak else module, batches, CPU, 1, fused="require")
    plain_fit(module, batches, CPU, 1, fused="auto")  # auto: autograd's steps, no error


def test_cuda_device_is_left_to_autograd():
    module = _module(0.2)
    assert "device cuda" in unsupported(module, module.configure_optimizers(), None, torch.device("cuda"))


def test_whole_frozen_runs_are_identical_with_either_engine(make_cfg, tmp_path):
    """The loop end to end (BALD: MC dropout over the trained head; 3 cycles): same curve, same picks."""
    overrides = ["strategy=bald", *FROZEN, "trainer.max_epochs=4", "budget.cycles=2"]
    cache = f"paths.cache_dir={tmp_path / 'cache'}"
    assert_same_runs_with_engines(make_cfg, tmp_path, ("plain", "fused"), *overrides, cache)


def test_explicit_fused_engine_for_another_model_stops_in_one_line(make_cfg):
    cfg = make_cfg("trainer.engine=fused", "trainer.max_epochs=1")  # the default MLP on digits
    with pytest.raises(ALBenchError, match="trainer.engine=fused trains a linear head") as e:
        run(cfg)
    assert "\n" not in str(e.value)
