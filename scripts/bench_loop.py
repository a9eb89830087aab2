"""Overhead of al_bench's loop (Hydra config, Lightning Trainer per cycle, results files) against a
hand-written torch loop doing the same work: digits, MLP, 20 labels +10 per cycle, 20 cycles, the same epochs,
batch size, optimizer, per-cycle re-initialisation, test evaluation and entropy selection. Side by side in one
process; the ratio is al_bench / hand-written (goal: at most 1.5x)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import best_of, compose, write_results  # noqa: E402

from al_bench.data.digits import load_digits_dataset  # noqa: E402
from al_bench.models.mlp import MLP  # noqa: E402


def hand_written_loop(
    init: int, query: int, cycles: int, epochs: int, batch_size: int, seed: int
) -> list[float]:
    """The same AL experiment as plain PyTorch: what a researcher would write without a framework."""
    ds = load_digits_dataset()
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y.numpy() == c)) for c in range(10)]
    labeled = np.sort(np.concatenate([p[: init // 10] for p in per_class]))
    accs = []
    for cycle in range(cycles + 1):
        torch.manual_seed(seed * 1000 + cycle)
        net = MLP((1, 8, 8), 10, hidden=(256, 256), dropout=0.3)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        idx = torch.as_tensor(labeled)
        net.train()
        for _ in range(epochs):
            perm = idx[torch.randperm(len(idx))]
            for i in range(0, len(perm), batch_size):
                b = perm[i : i + batch_size]
                loss = F.cross_entropy(net(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.inference_mode():
            accs.append(float((net(xt).argmax(1) == yt).float().mean()))
            if cycle < cycles:
                unlabeled = np.setdiff1d(np.arange(len(y)), labeled)
                p = net(x[torch.as_tensor(unlabeled)]).softmax(1)
                ent = -(p * p.clamp_min(1e-12).log()).sum(1)
                labeled = np.sort(np.concatenate([labeled, unlabeled[ent.topk(query).indices.numpy()]]))
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 cycles, 10 epochs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for both sides (al_bench default: 1)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cycles, epochs = (5, 10) if args.quick else (20, 50)
    init, query, batch = 20, 10, 32

    from al_bench.loop import run

    def al_bench_run() -> list[float]:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = compose(
                [
                    "strategy=entropy", f"budget.cycles={cycles}", f"trainer.max_epochs={epochs}",
                    f"trainer.batch_size={batch}", f"paths.results_dir={tmp}", "verbose=false",
                    f"threads={args.threads}",
                ]
            )  # fmt: skip
            return run(cfg).curve["test_acc"].tolist()

    t_ref, ref_acc = best_of(lambda: hand_written_loop(init, query, cycles, epochs, batch, 0), args.repeats)
    t_ours, our_acc = best_of(al_bench_run, args.repeats)
    ratio = t_ours / t_ref
    payload = {
        "setting": {"dataset": "digits", "model": "mlp", "init": init, "query": query, "cycles": cycles,
                    "epochs": epochs, "batch_size": batch, "strategy": "entropy", "repeats": args.repeats,
                    "threads": args.threads},
        "hand_written_s": t_ref, "al_bench_s": t_ours, "ratio": ratio, "goal_ratio": 1.5,
        "final_acc": {"hand_written": ref_acc[-1], "al_bench": our_acc[-1]},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    md = (
        "# al_bench loop overhead vs a hand-written torch loop\n\n"
        f"digits, MLP, {init} labels +{query} x {cycles} cycles, {epochs} epochs, batch {batch}, entropy; "
        f"best of {args.repeats}\n\n"
        "| | seconds | final test acc |\n|---|---|---|\n"
        f"| hand-written torch loop | {t_ref:.2f} | {ref_acc[-1]:.4f} |\n"
        f"| al_bench (Hydra + Lightning) | {t_ours:.2f} | {our_acc[-1]:.4f} |\n\n"
        f"**ratio al_bench / hand-written: {ratio:.2f}x** (goal <= 1.5x)\n"
    )
    write_results("loop", payload, md, args.out)


if __name__ == "__main__":
    main()
