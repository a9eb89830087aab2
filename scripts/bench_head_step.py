"""A training step of the frozen protocol's linear head, FastDropout against torch's nn.Dropout, side by side.

The frozen suites train a linear head on 1,280-d cached features (batch 128, dropout 0.2 before the head, Adam
1e-3): ~3,150 such steps per run. The reference is the head as torch builds it, ``nn.Dropout`` (a CPU
Bernoulli draw per element from MT19937); al_bench's heads use ``FastDropout`` (PCG64 float32 uniforms, the
same mask distribution). Both heads start from the same weights and see the same batches; the variants are
interleaved repeat by repeat (best of ``--repeats``), so both see the same machine load. Also timed: the mask
alone, and the step without dropout (the floor). torch uses 1 thread, as the runs do.
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

from al_bench.models.fast_dropout import FastDropout  # noqa: E402

VARIANTS = {"fast_dropout": FastDropout, "nn_dropout": nn.Dropout, "no_dropout": None}


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
    best: dict[str, float] = {f"{name}_step_s": float("inf") for name in VARIANTS}
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
        "mask_speedup": best["torch_mask_s"] / best["fast_mask_s"],
        "kept_fraction": kept,
        "args": vars(args) | {"out": str(args.out) if args.out else None},
    }
    ms = {k: 1e3 * v for k, v in best.items()}
    md = "\n".join(
        [
            "# Linear-head training step: FastDropout vs nn.Dropout (the frozen protocol's step)",
            "",
            f"Batch {args.batch} x {args.dim} features -> 10 classes, dropout p = {args.p}, Adam; cpu, 1 "
            f"thread; best of {args.repeats} x {args.steps} steps, variants interleaved.",
            "",
            "| what | ms | |",
            "|---|---|---|",
            f"| step, head dropout = nn.Dropout (reference) | {ms['nn_dropout_step_s']:.3f} | |",
            f"| step, head dropout = FastDropout (al_bench) | {ms['fast_dropout_step_s']:.3f} | "
            f"**{results['step_speedup']:.2f}x faster** |",
            f"| step without dropout (the floor) | {ms['no_dropout_step_s']:.3f} | |",
            f"| mask alone: nn.Dropout / FastDropout | {ms['torch_mask_s']:.3f} / {ms['fast_mask_s']:.3f} | "
            f"{results['mask_speedup']:.1f}x |",
            "",
            f"Kept fraction over 400 x {args.dim} draws: FastDropout {kept['fast']:.4f}, nn.Dropout "
            f"{kept['torch']:.4f} (1 - p = {1 - args.p:.4f}). "
            "Reproduce: `python scripts/bench_head_step.py`.",
            "",
        ]
    )
    write_results("head_step", results, md, args.out)


if __name__ == "__main__":
    main()
