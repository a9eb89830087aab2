"""ResNet-18 on CIFAR-shaped images: one training epoch and pool inference, al_bench's path against
hand-written torch loops doing the same work, side by side in one process.

- al_bench: an ALDataModule holding the uint8 images on the device; training through
  ``al_bench.training.train_model`` (the loop's own ALModule + Lightning Trainer, built from the real Hydra
  config); inference through ``al_bench.inference.logits_and_features``.
- plain torch: the same in-memory uint8 tensors, batched normalisation and crop+flip on tensors, a bare
  zero_grad/forward/backward/step loop; inference a bare no-grad loop collecting logits and features.
- torchvision-style: what the papers' public code does (LL4AL, BADGE, Class-Balanced-AL): a Dataset of HWC
  uint8 images with per-sample PIL transforms (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize)
  read through a DataLoader.

Same model class, same initial weights, same batch sizes (128 train, 1024 inference), SGD lr 0.1 momentum 0.9
weight decay 5e-4, fp32 training. On CUDA al_bench runs as the loop does by default (channels_last training,
bf16-autocast pool inference; ``--fp32-inference`` turns the latter off); the references stay fp32 NCHW.
Ratios are wall-time al_bench / reference (below 1: al_bench is faster).
Defaults are the issue's sizes (10,000 training images, 50,000 pool images: a GPU workload); ``--quick`` uses
1,000 and 5,000.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import compose, write_results  # noqa: E402

from al_bench.data.base import ALDataModule, ArrayDataset  # noqa: E402
from al_bench.inference import logits_and_features  # noqa: E402
from al_bench.models.resnet import ResNet18  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # the CIFAR-10 loader's statistics
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


# ---- the al_bench path -------------------------------------------------------------------------------------


def al_bench_train(
    net: ResNet18, data: ALDataModule, indices: np.ndarray, batch_size: int, run_dir: str
) -> float:
    """One epoch exactly as the loop trains a cycle's model; returns the epoch's mean training loss."""
    from al_bench.training import train_model

    cfg = compose(
        [
            "model=resnet18",
            "trainer.max_epochs=1",
            f"trainer.batch_size={batch_size}",
            "trainer.optimizer._target_=torch.optim.SGD",
            f"trainer.optimizer.lr={LR}",
            f"trainer.optimizer.weight_decay={WEIGHT_DECAY}",
            f"+trainer.optimizer.momentum={MOMENTUM}",
            f"paths.run_dir={run_dir}",
        ]
    )
    module = train_model(cfg, net, data, indices, seed=0, cycle=0)
    return float(module.epoch_loss)


# ---- the plain torch reference -----------------------------------------------------------------------------


def plain_normalise(x_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x_u8.float() / 255 - mean) / std


def plain_crop_flip(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of the zero-padded batch and random horizontal flip, by index arithmetic."""
    b, c, h, w = x.shape
    xp = F.pad(x, (padding,) * 4)
    oy, ox = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    cols = ox[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = oy[:, None] + torch.arange(h, device=x.device)
    batch_idx = torch.arange(b, device=x.device)[:, None, None, None]
    chan_idx = torch.arange(c, device=x.device)[:, None, None]
    return xp[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


def plain_train(net: ResNet18, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    device = x_u8.device
    mean, std = (
        torch.tensor(MEAN, device=device).view(1, 3, 1, 1),
        torch.tensor(STD, device=device).view(1, 3, 1, 1),
    )
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g).to(device)
    net.train()
    total, seen = torch.zeros((), device=device), 0
    for i in range(0, len(perm), batch_size):
        idx = perm[i : i + batch_size]
        x = plain_crop_flip(plain_normalise(x_u8[idx], mean, std), 4, g)
        loss = F.cross_entropy(net(x), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
        seen += len(idx)
    return float(total) / seen


@torch.inference_mode()
def plain_infer(net: ResNet18, x_u8: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    device = x_u8.device
    mean, std = (
        torch.tensor(MEAN, device=device).view(1, 3, 1, 1),
        torch.tensor(STD, device=device).view(1, 3, 1, 1),
    )
    net.eval()
    logits, feats = [], []
    for i in range(0, len(x_u8), batch_size):
        h = net.features(plain_normalise(x_u8[i : i + batch_size], mean, std))
        logits.append(net.head(h).cpu())
        feats.append(h.cpu())
    return torch.cat(logits), torch.cat(feats)


# ---- the torchvision-style reference (the papers' public code) ---------------------------------------------


class HWCImages(Dataset):
    """uint8 images [N, H, W, C] + labels, each item through PIL transforms (torchvision's CIFAR10 style)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def tv_loader(images: np.ndarray, labels: np.ndarray, train: bool, batch_size: int, workers: int, pin: bool):
    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if train else []
    transform = T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])
    return DataLoader(
        HWCImages(images, labels, transform),
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        pin_memory=pin,
        generator=torch.Generator().manual_seed(0),
    )


def tv_train(
    net: ResNet18, loader: DataLoader, device: torch.device, max_batches: int | None
) -> tuple[float, int]:
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    net.train()
    total, seen = 0.0, 0
    for step, (x, y) in enumerate(loader):
        if max_batches is not None and step >= max_batches:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(y)
        seen += len(y)
    return total / max(seen, 1), seen


@torch.inference_mode()
def tv_infer(net: ResNet18, loader: DataLoader, device: torch.device, max_batches: int | None) -> tuple:
    net.eval()
    logits, feats = [], []
    for step, (x, _) in enumerate(loader):
        if max_batches is not None and step >= max_batches:
            break
        h = net.features(x.to(device, non_blocking=True))
        logits.append(net.head(h).cpu())
        feats.append(h.cpu())
    return torch.cat(logits), torch.cat(feats)


# ---- driver ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 training and 5,000 pool images")
    parser.add_argument("--n-train", type=int, default=None, help="training images (default 10,000)")
    parser.add_argument("--n-pool", type=int, default=None, help="pool images for inference (default 50,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-batch-size", type=int, default=1024)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default 4 on CUDA, else 0)"
    )
    parser.add_argument(
        "--tv-fraction",
        type=float,
        default=1.0,
        help="time the torchvision-style reference on this leading fraction of its batches and extrapolate",
    )
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats; the best time is kept")
    parser.add_argument(
        "--fp32-inference", action="store_true", help="al_bench inference without bf16 autocast (CUDA only)"
    )
    parser.add_argument("--skip-tv", action="store_true", help="leave out the torchvision-style reference")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/bench)")
    args = parser.parse_args()

    n_train = args.n_train or (1_000 if args.quick else 10_000)
    n_pool = args.n_pool or (5_000 if args.quick else 50_000)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers if args.workers is not None else (4 if device.type == "cuda" else 0)
    import pytorch_lightning  # noqa: F401  (configures its loggers on import; quiet them after)

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    # synthetic CIFAR-shaped data: uint8 images [N, 3, 32, 32], 10 classes
    g = torch.Generator().manual_seed(0)
    n_total = max(n_train, n_pool)
    x_u8 = torch.randint(0, 256, (n_total, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n_total,), generator=g)
    dataset = ArrayDataset("synthetic_cifar", x_u8, y, x_u8[:10], y[:10], 10, MEAN, STD, "crop_flip", 4)
    data = ALDataModule(
        dataset, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, device=device
    )
    train_idx, pool_idx = np.arange(n_train), np.arange(n_pool)
    x_dev, y_dev = x_u8.to(device), y.to(device)
    hwc = x_u8.permute(0, 2, 3, 1).contiguous().numpy()
    labels = y.numpy()

    torch.manual_seed(0)
    init = ResNet18([3, 32, 32], 10).to(device)
    fresh = lambda: copy.deepcopy(init)  # same initial weights for every path

    print(f"device {device}, threads {torch.get_num_threads()}, workers {workers}; warming up", flush=True)
    warm = fresh()
    plain_train(warm, x_dev[: 2 * args.batch_size], y_dev[: 2 * args.batch_size], args.batch_size)
    plain_infer(warm, x_dev[: args.eval_batch_size], args.eval_batch_size)
    del warm

    paths = ["al_bench", "plain"] + ([] if args.skip_tv else ["torchvision"])
    frac = min(max(args.tv_fraction, 1e-6), 1.0)
    pin = device.type == "cuda"
    net = fresh()  # the inference model, shared by every path

    def train_once(path: str) -> tuple[float, int, float]:
        """(seconds, images trained on, mean loss) for one epoch of ``path`` from the same initial weights."""
        if path == "al_bench":
            with tempfile.TemporaryDirectory() as run_dir:
                t, loss = timed(
                    lambda: al_bench_train(fresh(), data, train_idx, args.batch_size, run_dir), device
                )
            return t, n_train, loss
        if path == "plain":
            t, loss = timed(
                lambda: plain_train(fresh(), x_dev[:n_train], y_dev[:n_train], args.batch_size), device
            )
            return t, n_train, loss
        limit = None if frac >= 1.0 else max(1, round(frac * -(-n_train // args.batch_size)))
        loader = tv_loader(hwc[:n_train], labels[:n_train], True, args.batch_size, workers, pin)
        t, (loss, seen) = timed(lambda: tv_train(fresh(), loader, device, limit), device)
        return t, seen, loss

    def infer_once(path: str) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(seconds, logits, features) of ``path`` over the pool (a leading part for a timed prefix)."""
        if path == "al_bench":
            t, out = timed(
                lambda: logits_and_features(net, data, pool_idx, bf16=not args.fp32_inference), device
            )
        elif path == "plain":
            t, out = timed(lambda: plain_infer(net, x_dev[:n_pool], args.eval_batch_size), device)
        else:
            limit = None if frac >= 1.0 else max(1, round(frac * -(-n_pool // args.eval_batch_size)))
            loader = tv_loader(hwc[:n_pool], labels[:n_pool], False, args.eval_batch_size, workers, pin)
            t, out = timed(lambda: tv_infer(net, loader, device, limit), device)
        return t, out[0], out[1]

    rows: dict[str, dict[str, Any]] = {
        "train": {"images": n_train, **{p: {"runs_s": []} for p in paths}},
        "inference": {"images": n_pool, **{p: {"runs_s": []} for p in paths}},
    }
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for rep in range(args.repeats):
        # interleaved and rotated (repeat r starts with path r): a drifting machine load hits every path
        order = paths[rep % len(paths) :] + paths[: rep % len(paths)]
        for path in order:
            t, seen, loss = train_once(path)
            rows["train"][path]["runs_s"].append(t * n_train / seen)
            rows["train"][path].update(measured_images=seen, loss=loss)
            print(f"[{rep}] train {path:12s} {t:8.2f} s on {seen} images, loss {loss:.3f}", flush=True)
        for path in order:
            t, logits, feats = infer_once(path)
            rows["inference"][path]["runs_s"].append(t * n_pool / len(logits))
            rows["inference"][path]["measured_images"] = len(logits)
            outputs[path] = (logits, feats)
            print(f"[{rep}] infer {path:12s} {t:8.2f} s on {len(logits)} images", flush=True)
    notes = [
        f"torchvision-style {task} timed on {rows[task]['torchvision']['measured_images']} of "
        f"{rows[task]['images']} images and extrapolated"
        for task in rows
        if "torchvision" in rows[task] and rows[task]["torchvision"]["measured_images"] < rows[task]["images"]
    ]
    ours = outputs["al_bench"]
    agree = {}
    for ref in paths[1:]:
        k = len(outputs[ref][0])
        agree[f"{ref}_max_abs_logit_diff"] = float((ours[0][:k] - outputs[ref][0]).abs().max())
        agree[f"{ref}_max_abs_feature_diff"] = float((ours[1][:k] - outputs[ref][1]).abs().max())
    for row in rows.values():
        for path in paths:
            row[path]["s"] = min(row[path]["runs_s"])

    refs = paths[1:]
    for row in rows.values():
        for path in ("al_bench", *refs):
            row[path]["images_per_s"] = row["images"] / row[path]["s"]
        for ref in refs:
            row[f"ratio_vs_{ref}"] = row["al_bench"]["s"] / row[ref]["s"]

    payload = {
        "setting": {
            "model": "resnet18 (CIFAR stem)",
            "n_train": n_train,
            "n_pool": n_pool,
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "dataloader_workers": workers,
            "optimizer": f"SGD lr {LR} momentum {MOMENTUM} wd {WEIGHT_DECAY}",
            "quick": args.quick,
            "repeats": args.repeats,
            "al_bench_inference_bf16": device.type == "cuda" and not args.fp32_inference,
            "al_bench_channels_last_training": device.type == "cuda",
        },
        "results": rows,
        "agreement": agree,
        "notes": notes,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    names = {"al_bench": "al_bench", "plain": "plain torch", "torchvision": "torchvision-style"}
    header = "| task | images | " + " | ".join(f"{names[p]} s (img/s)" for p in ("al_bench", *refs))
    header += " | " + " | ".join(f"al_bench / {names[r]}" for r in refs) + " |\n"
    header += "|---" * (2 + 1 + 2 * len(refs)) + "|\n"
    lines = []
    for task, row in rows.items():
        cells = [f"{row[p]['s']:.2f} ({row[p]['images_per_s']:.0f})" for p in ("al_bench", *refs)]
        cells += [f"{row[f'ratio_vs_{r}']:.2f}x" for r in refs]
        lines.append(f"| {task} | {row['images']} | " + " | ".join(cells) + " |\n")
    md = (
        "# ResNet-18 training epoch and pool inference: al_bench vs hand-written torch\n\n"
        f"{device}, {torch.get_num_threads()} threads, DataLoader workers {workers}, batch {args.batch_size} "
        f"(inference {args.eval_batch_size}), synthetic CIFAR-shaped uint8 images; "
        f"best of {args.repeats} interleaved, rotated run(s).\n\n"
        + header
        + "".join(lines)
        + "\nRatios are wall-time al_bench / reference (below 1: al_bench faster). "
        + "Inference agreement (max |difference|): "
        + ", ".join(f"{k} {v:.2e}" for k, v in agree.items())
        + ".\n"
        + "".join(f"\n- {n}" for n in notes)
        + ("\n" if notes else "")
    )
    write_results("models", payload, md, args.out)


if __name__ == "__main__":
    main()
