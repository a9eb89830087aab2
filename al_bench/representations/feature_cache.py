"""Frozen-backbone features of a whole dataset, extracted once and cached on disk by content.

``extract_features(cfg or spec, dataset) -> (train [N, D], test [M, D])`` float32 on CPU. The cache file is
``<cache_dir>/features/<dataset>/<arch>-<key>.pt`` where ``key`` hashes (format version, arch, the identity of
the weights -- file sha256, timm hub id, or random-init seed with timm/torch versions --, the input transform,
the images of both splits (sha256 of their bytes, shape and dtype), the device type and precision). Labels are
not part of it: features depend on images only, so every label scenario shares one file.

Concurrency and faults: a cache hit reads a file that only ever appears complete (written to a temporary file
in the same folder, fsynced, renamed); a miss takes an exclusive ``flock`` on ``<file>.lock``, looks again
(another job may have just written it), and only then extracts: two sweep jobs never extract the same thing.
A file that cannot be read or does not match its key is extracted again, with one warning line on stderr.

Resume: extraction goes chunk by chunk (:data:`CHUNK` images), each finished chunk written atomically to
``<file>.parts/``; a killed extraction restarts at its first unfinished chunk (same key), and the parts are
removed once the whole file is written. Non-finite features are refused before anything is cached.

Extraction: the backbone in eval mode under ``torch.inference_mode``, batches of ``batch_size`` raw images
([0, 1] pixels: uint8 / 255, float data as stored, e.g. Repeated-MNIST's noisy copies), fp32, channels-last
(about 20% faster for EfficientNet's depthwise convolutions on CPU), a tqdm progress bar on stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.representations.backbones import (
    Backbone,
    BackboneSpec,
    ResolvedBackbone,
    create_backbone,
    resolve_backbone,
)

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent extractions there are not deduplicated
    fcntl = None  # type: ignore[assignment]

#: version of the cache layout and of the extraction procedure; bump it to invalidate every cache.
FORMAT = "al_bench-features-1"
DEFAULT_CACHE_DIR = "cache"
#: images per extraction batch by device type when the config says null. On CPU, batches above ~32 images at
#: 96 px make the allocator map and unmap its big buffers every batch: half the time goes to page faults
#: (EfficientNet-Lite0, 1 thread: ~100 img/s of CPU time at 256, ~200 at 16).
AUTO_BATCH_SIZE = {"cpu": 16, "cuda": 256}
#: images per resumable chunk: an interrupted extraction restarts at its first unfinished chunk
CHUNK = 4096
_UNREADABLE = (RuntimeError, OSError, EOFError, ValueError, KeyError, TypeError)


def tensor_sha256(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (CPU, contiguous)."""
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    arr = t.detach().cpu().contiguous()
    if arr.dtype == torch.bfloat16:
        arr = arr.view(torch.int16)
    h.update(memoryview(np.ascontiguousarray(arr.numpy())).cast("B"))
    return h.hexdigest()


def dataset_fingerprint(dataset: ArrayDataset) -> dict[str, str]:
    """What identifies a dataset's images: its name and the content hashes of both splits."""
    return {
        "name": dataset.name,
        "x_train": tensor_sha256(dataset.x_train),
        "x_test": tensor_sha256(dataset.x_test),
    }


def cache_spec(resolved: ResolvedBackbone, dataset: ArrayDataset, device: torch.device) -> dict[str, Any]:
    """Everything the cached features depend on, as plain data (hashed into the key)."""
    return {
        "format": FORMAT,
        "arch": resolved.arch,
        "weights": resolved.source,
        "transform": resolved.transform,
        "data": dataset_fingerprint(dataset),
        "device": device.type,
        "precision": "fp32",
    }


def cache_path(cache_dir: str | Path, spec: dict[str, Any]) -> Path:
    """``<cache_dir>/features/<dataset>/<arch>-<key>.pt`` for a :func:`cache_spec`."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]", "_", str(s))  # noqa: E731
    return Path(cache_dir) / "features" / safe(spec["data"]["name"]) / f"{safe(spec['arch'])}-{key}.pt"


@torch.inference_mode()
def compute_features(
    backbone: Backbone,
    images: torch.Tensor,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Any = None,
) -> torch.Tensor:
    """Features [N, D] float32 on CPU of raw images [N, C, H, W] (uint8 or float [0, 1] pixels).

    ``backbone`` is used in eval mode (restored after); ``progress``: a tqdm bar updated per batch, or None.
    """
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval()
    out = []
    try:
        for start in range(0, len(images), int(batch_size)):
            x = images[start : start + int(batch_size)].to(device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            if x.ndim == 4:  # depthwise / grouped convolutions run faster in NHWC (CPU and CUDA)
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(backbone(x).float().cpu())
            if progress is not None:
                progress.update(len(x))
    finally:
        backbone.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, backbone.num_features)


@contextmanager
def _exclusive(lock_path: Path, verbose: bool) -> Iterator[None]:
    """An exclusive flock on ``lock_path`` for the block (waits, saying so once, while another holds it)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if verbose:
                    print(f"waiting for another process extracting into {lock_path.parent}", file=sys.stderr)
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _read(path: Path, spec: dict[str, Any], n_train: int, n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached (train, test) of ``path``; ValueError (or a load error) when it is not the expected file."""
    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # pages read on first touch
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError("not an al_bench feature file")
    if obj.get("spec") != spec:
        raise ValueError("its key does not match its content")
    train, test = obj["train"], obj["test"]
    if train.ndim != 2 or test.ndim != 2 or len(train) != n_train or len(test) != n_test:
        raise ValueError(f"shapes {tuple(train.shape)}, {tuple(test.shape)} differ from the dataset's")
    if train.shape[1] != test.shape[1]:  # finiteness is checked before writing: a hit reads no page eagerly
        raise ValueError("inconsistent feature widths")
    return train.float(), test.float()


def _write(path: Path, obj: dict[str, Any]) -> None:
    """torch.save to a temporary file in the same folder, fsync, atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _try_read(path: Path, spec: dict[str, Any], ds: ArrayDataset, warn: bool):
    if not path.exists():
        return None
    try:
        return _read(path, spec, ds.n_train, len(ds.y_test))
    except _UNREADABLE as e:
        if warn:
            reason = " ".join(str(e).split())[:120]
            print(
                f"warning: feature cache {path} is unreadable ({type(e).__name__}: {reason}); "
                "extracting again",
                file=sys.stderr,
                flush=True,
            )
        return None


def _spec_and_options(
    source: DictConfig | BackboneSpec, cache_dir: str | Path | None, batch_size: int | None
) -> tuple[BackboneSpec, Path, int | None]:
    if isinstance(source, BackboneSpec):
        return source, Path(cache_dir or DEFAULT_CACHE_DIR), batch_size
    model_cfg = source.model if "model" in source else source
    paths = source.get("paths") or {}
    where = cache_dir or paths.get("cache_dir") or DEFAULT_CACHE_DIR
    size = batch_size or model_cfg.get("extract_batch_size")
    spec = BackboneSpec.from_config(model_cfg)
    return spec, Path(str(where)).expanduser(), None if size is None else int(size)


def extract_features(
    source: DictConfig | BackboneSpec,
    dataset: ArrayDataset,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [N, D], test [M, D]) float32 CPU features of ``dataset``'s images under a backbone, cached.

    ``source``: a composed run config (its ``model`` node, ``paths.cache_dir``, ``model.extract_batch_size``),
    a model node, or a :class:`BackboneSpec`. A backbone without weights is initialised from its
    ``init_seed``. ``cache_dir``/``batch_size`` override the config's; batch size None: by device
    (:data:`AUTO_BATCH_SIZE`). See the module docstring for the key,
    the locking and the fault handling.
    """
    spec, where, size = _spec_and_options(source, cache_dir, batch_size)
    device = torch.device(device)
    size = size or AUTO_BATCH_SIZE.get(device.type, 64)
    resolved = resolve_backbone(spec)
    key_spec = json.loads(json.dumps(cache_spec(resolved, dataset, device)))  # as it reads back
    path = cache_path(where, key_spec)
    hit = _try_read(path, key_spec, dataset, warn=False)
    if hit is not None:
        return hit
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ALBenchError(
            f"cannot write the feature cache under {where} ({e}): set paths.cache_dir"
        ) from None
    with _exclusive(path.with_name(path.name + ".lock"), verbose):
        hit = _try_read(path, key_spec, dataset, warn=True)  # written meanwhile, or corrupt: say so once
        if hit is not None:
            return hit
        parts = path.with_name(path.name + ".parts")
        train, test, seconds = _extract(resolved, dataset, size, device, verbose, parts, key_spec)
        if not (torch.isfinite(train).all() and torch.isfinite(test).all()):
            shutil.rmtree(parts, ignore_errors=True)
            raise ALBenchError(
                f"the backbone {resolved.arch} gave non-finite features for {dataset.name}: nothing was "
                "cached; check model.weights and the input transform"
            )
        _write(path, {"format": FORMAT, "spec": key_spec, "train": train, "test": test, "seconds": seconds})
        shutil.rmtree(parts, ignore_errors=True)
        if verbose:
            n = len(train) + len(test)
            print(
                f"features: {n} images x {train.shape[1]} in {seconds:.1f}s "
                f"({n / max(seconds, 1e-9):.0f} img/s)"
                f" -> {path}",
                file=sys.stderr,
                flush=True,
            )
        return train, test


def _extract(
    resolved: ResolvedBackbone,
    dataset: ArrayDataset,
    batch_size: int,
    device: torch.device,
    verbose: bool,
    parts: Path,
    key_spec: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(train, test, seconds of this call) of every image, chunk by chunk: a chunk already in ``parts`` (left
    by an interrupted extraction of the same key) is read back, every new chunk is written there atomically
    (the caller holds the lock and removes ``parts`` once the whole file is written)."""
    from tqdm import tqdm

    splits = {"train": dataset.x_train, "test": dataset.x_test}
    plan = [(name, start) for name, x in splits.items() for start in range(0, len(x), CHUNK)]
    done = {chunk: f for chunk in plan if (f := _read_part(_part_path(parts, *chunk), key_spec)) is not None}
    total = sum(len(x) for x in splits.values())
    resumed = sum(len(f) for f in done.values())
    if verbose and resumed:
        print(f"features: resuming, {resumed} of {total} images read from {parts}", file=sys.stderr)
    backbone = None
    t0 = time.perf_counter()
    with tqdm(
        total=total,
        initial=resumed,
        unit="img",
        desc=f"features {resolved.arch} {dataset.name}",
        file=sys.stderr,
        disable=not verbose,
        mininterval=1.0,
        dynamic_ncols=True,
    ) as bar:
        for name, start in plan:
            if (name, start) in done:
                continue
            if backbone is None:
                backbone = create_backbone(resolved, seed=resolved.spec.init_seed).to(device)
                backbone = backbone.to(memory_format=torch.channels_last)
            images = splits[name][start : start + CHUNK]
            features = compute_features(backbone, images, batch_size, device, bar)
            _write(_part_path(parts, name, start), {"format": FORMAT, "spec": key_spec, "features": features})
            done[(name, start)] = features
    out = {name: [done[(n, s)] for n, s in plan if n == name] for name in splits}
    width = next(iter(done.values())).shape[1] if done else 0
    train, test = (torch.cat(out[n]) if out[n] else torch.zeros(0, width) for n in ("train", "test"))
    return train, test, time.perf_counter() - t0


def _part_path(parts: Path, split: str, start: int) -> Path:
    return parts / f"{split}-{start:09d}.pt"


def _read_part(path: Path, key_spec: dict[str, Any]) -> torch.Tensor | None:
    """The features of one finished chunk, or None (absent, unreadable or of another key)."""
    if not path.exists():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE:
        return None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("spec") != key_spec:
        return None
    return obj["features"]


def features_dataset(
    dataset: ArrayDataset, train: torch.Tensor, test: torch.Tensor, name: str | None = None
) -> ArrayDataset:
    """``dataset`` with its images replaced by feature vectors [N, D] / [M, D]: no statistics (the features
    are served as they are), no augmentation; labels, classes and name kept."""
    return replace(
        dataset,
        name=name or dataset.name,
        x_train=train,
        x_test=test,
        mean=None,
        std=None,
        augment="none",
        crop_padding=0,
    )
