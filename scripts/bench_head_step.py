"""The frozen protocol's linear-head training step: nn.Dropout, FastDropout and the fused step, side by side.

The frozen suites train a linear head on 1,280-d cached features (batch 128, dropout 0.2 before the head, Adam
1e-3): ~3,150 such steps per run. The reference is the head as torch builds it, ``nn.Dropout`` (a CPU
Bernoulli draw per element from MT19937); al_bench's heads use ``FastDropout`` (PCG64 float32 uniforms, the
same mask distribution). Both heads start from the same weights and see the same batches; the variants are
interleaved repeat by repeat (best of ``--repeats``), so both see the same machine load. Also timed: the mask
alone, and the step without dropout (the floor). The fused variant is what runs use
(``al_bench.linear_step.LinearHeadStep``: the FastDropout step's arithmetic without autograd and the
optimizer's wrappers, the same weights bit for bit, checked here after the timing). torch uses 1 thread, as
the runs do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import write_results  # noqa: E402

from al_bench.linear_step import LinearHeadStep  # noqa: E402
from al_bench.models.fast_dropout import FastDropout  # noqa: E402
from al_bench.models.feature_head import FeatureHead  # noqa: E402
from al_bench.module import ALModule  # noqa: E402

VARIANTS = {"fast_dropout": FastDropout, "nn_dropout": nn.Dropout, "no_dropout": None}


def make_fused_step(p: float, x: torch.Tensor, y: torch.Tensor):
    """The fused step over a FeatureHead with the same initial weights as ``make_step``'s head."""
    torch.manual_seed(0)
    head = nn.Linear(x.shape[1], int(y.max()) + 1)
    net = FeatureHead((x.shape[1],), int(y.max()) + 1, dropout=p)
    net.head.load_state_dict(head.state_dict())
    module = ALModule(net, lambda params: torch.optim.Adam(params, lr=1e-3))
    module.train()
    step = LinearHeadStep(module, module.configure_optimizers())
    batch = (x, y, torch.arange(len(y)))
    return lambda: step(batch), net.head


def make_step(variant: str, p: float, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    head = nn.Linear(x.shape[1], int(y.max()) + 1)
    drop = VARIANTS[variant](p).train() if VARIANTS[variant] else nn.Identity()
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(head(drop(x)), y).backward()
        opt.step()

    return step, drop


def fused_is_autograd(p: float, x: torch.Tensor, y: torch.Tensor, steps: int = 200) -> bool:
    """The fused step and autograd's step of the same FeatureHead from the same seed: the same state after
    ``steps`` steps, bit for bit (what tests/core/test_linear_step.py checks at test size)."""
    nets, optimizers = [], []
    for fused in (False, True):
        torch.manual_seed(0)
        module = ALModule(FeatureHead((x.shape[1],), int(y.max()) + 1, dropout=p), torch.optim.Adam)
        module.train()
        optimizer = module.configure_optimizers()
        step = LinearHeadStep(module, optimizer) if fused else None
        batch = (x, y, torch.arange(len(y)))
        torch.manual_seed(1)
        for _ in range(steps):
            if step is not None:
                step(batch)
            else:
                loss = module.loss_and_logits(batch, 0, 1)[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        nets.append(module.net)
        optimizers.append(optimizer)
    same = all(
        torch.equal(a, b) and torch.equal(a.grad, b.grad) for a, b in zip(*(n.parameters() for n in nets))
    )
    states = [[o.state[q] for q in n.parameters()] for o, n in zip(optimizers, nets)]
    return same and all(torch.equal(s[k], t[k]) for s, t in zip(*states) for k in s)


def time_per_call(fn, steps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--p", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.dim, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    steps = {name: make_step(name, args.p, x, y) for name in VARIANTS}
    steps["fused"] = make_fused_step(args.p, x, y)
    best: dict[str, float] = {f"{name}_step_s": float("inf") for name in steps}
    best |= {"fast_mask_s": float("inf"), "torch_mask_s": float("inf")}
    fast, torch_drop = FastDropout(args.p).train(), nn.Dropout(args.p).train()
    for _ in range(args.repeats):
        for name, (step, _) in steps.items():
            best[f"{name}_step_s"] = min(best[f"{name}_step_s"], time_per_call(step, args.steps))
        best["fast_mask_s"] = min(best["fast_mask_s"], time_per_call(lambda: fast(x), args.steps))
        best["torch_mask_s"] = min(best["torch_mask_s"], time_per_call(lambda: torch_drop(x), args.steps))
    torch.manual_seed(1)
    kept = {"fast": (fast(torch.ones(400, args.dim)) != 0).float().mean().item()}
    kept["torch"] = (torch_drop(torch.ones(400, args.dim)) != 0).float().mean().item()
    results: dict[str, Any] = {
        **best,
        "step_speedup": best["nn_dropout_step_s"] / best["fast_dropout_step_s"],
        "fused_speedup": best["fast_dropout_step_s"] / best["fused_step_s"],
        "fused_speedup_vs_torch": best["nn_dropout_step_s"] / best["fused_step_s"],
        "fused_identical": fused_is_autograd(args.p, x, y),
        "mask_speedup": best["torch_mask_s"] / best["fast_mask_s"],
        "kept_fraction": kept,
        "args": vars(args) | {"out": str(args.out) if args.out else None},
    }
    ms = {k: 1e3 * v for k, v in best.items()}
    md = "\n".join(
        [
            "# Linear-head training step: nn.Dropout, FastDropout, fused (the frozen protocol's step)",
            "",
            f"Batch {args.batch} x {args.dim} features -> 10 classes, dropout p = {args.p}, Adam; cpu, 1 "
            f"thread; best of {args.repeats} x {args.steps} steps, variants interleaved.",
            "",
            "| what | ms | |",
            "|---|---|---|",
            f"| step, head dropout = nn.Dropout (reference) | {ms['nn_dropout_step_s']:.3f} | |",
            f"| step, head dropout = FastDropout (al_bench) | {ms['fast_dropout_step_s']:.3f} | "
            f"**{results['step_speedup']:.2f}x faster** |",
            f"| step, fused (what runs use: FastDropout's step, no autograd) | {ms['fused_step_s']:.3f} | "
            f"**{results['fused_speedup']:.2f}x faster** than FastDropout's autograd step, "
            f"{results['fused_speedup_vs_torch']:.2f}x than the reference |",
            f"| step without dropout (autograd) | {ms['no_dropout_step_s']:.3f} | |",
            f"| mask alone: nn.Dropout / FastDropout | {ms['torch_mask_s']:.3f} / {ms['fast_mask_s']:.3f} | "
            f"{results['mask_speedup']:.1f}x |",
            "",
            f"Kept fraction over 400 x {args.dim} draws: FastDropout {kept['fast']:.4f}, nn.Dropout "
            f"{kept['torch']:.4f} (1 - p = {1 - args.p:.4f}). "
            "Fused step = autograd's step bit for bit (weights, gradients and Adam state after 200 steps "
            f"from the same seed): {'yes' if results['fused_identical'] else 'NO'}. "
            "Reproduce: `python scripts/bench_head_step.py`.",
            "",
        ]
    )
    write_results("head_step", results, md, args.out)


if __name__ == "__main__":
    main()
