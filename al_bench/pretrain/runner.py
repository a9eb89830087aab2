"""Run (or resume) one self-supervised pretraining from a composed ``pretrain`` config: data, run directory,
lock, epochs with one progress line each, a resume state after every epoch, the encoder checkpoint at the end.

Only the training images are used, never a label. The run directory (``paths.run_dir``) holds
``train_state.pt`` (resume state), ``encoder.pt`` (``al_bench-encoder-1``, see
:mod:`al_bench.pretrain.checkpoint`), ``config.yaml`` and ``run.lock``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from al_bench.build import build_dataset
from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError, ConfigMismatchError
from al_bench.pretrain.augment import SimCLRAugment
from al_bench.pretrain.checkpoint import load_state, plain_state_dict, save_encoder, save_state
from al_bench.pretrain.simclr import SimCLRNet, build_simclr, check_arch, cosine_lr, train_epoch
from al_bench.results import RunLock, atomic_write_text
from al_bench.seeding import torch_generator
from al_bench.tracking import format_duration

STATE_FILE = "train_state.pt"
ENCODER_FILE = "encoder.pt"
CONFIG_FILE = "config.yaml"
#: dataset keys that say where the files are, not what the data is: a moved data_dir still resumes.
LOCATION_KEYS = ("data_dir", "fallback_dir", "download", "verify")
#: ssl keys that do not change what is learned (up to floating point).
RUNTIME_KEYS = ("accelerator",)
METHODS = ("simclr",)
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class PretrainResult:
    """Where a pretraining run is and how far it got; ``encoder_path`` is None until the last epoch."""

    run_dir: Path
    encoder_path: Path | None
    epoch: int
    losses: list[float] = field(default_factory=list)
    status: str = "finished"  # "finished" | "already_finished" | "stopped"


class Views:
    """Turns stored images into normalised SimCLR views at the encoder's input size.

    uint8 images: scaled to [0, 1], augmented, normalised with ``mean``/``std``. Float images (already
    normalised by their loader, e.g. digits): mapped to [0, 1] with the training set's fixed (lo, hi),
    augmented there, mapped back; ``mean``/``std`` are then 0 / 1, so the encoder sees them as stored.
    """

    def __init__(self, images: torch.Tensor, augment: SimCLRAugment, mean: list[float], std: list[float]):
        self.augment = augment
        self.uint8 = images.dtype == torch.uint8
        lo, hi = (0.0, 255.0) if self.uint8 else (float(images.min()), float(images.max()))
        self.lo, self.span = lo, max(hi - lo, 1e-12)
        self.mean = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=images.device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x [B, C, H, W] as stored -> one view [B, C, S, S] float, normalised."""
        unit = (x.float() - self.lo) / self.span
        v = self.augment(unit, generator)
        if not self.uint8:
            v = v * self.span + self.lo
        return (v - self.mean) / self.std


def normalisation(images: torch.Tensor, mean: Any, std: Any) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) the encoder is trained and fed with, applied after uint8 -> [0, 1].

    uint8: the dataset's own statistics, else those of ``images`` [N, C, H, W]; float: 0 and 1 (identity).
    """
    c = images.shape[1]
    if images.dtype != torch.uint8:
        return [0.0] * c, [1.0] * c
    if mean is not None and std is not None:
        return [float(m) for m in mean], [float(s) for s in std]
    x = images.float().div_(255.0).transpose(0, 1).reshape(c, -1)
    return x.mean(1).tolist(), x.std(1).clamp(min=1e-6).tolist()


def saved_config(cfg: DictConfig) -> str:
    """The resolved yaml that describes the encoder: seed, dataset, ssl (the other groups are unused)."""
    keep = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("dataset", "ssl")}
    return OmegaConf.to_yaml(OmegaConf.create({"seed": int(cfg.seed), **keep}))


def fingerprint(config_yaml: str) -> dict[str, Any]:
    """What a resumed run must share with the state it resumes: the saved config minus data locations."""
    conf = OmegaConf.to_container(OmegaConf.create(config_yaml))
    assert isinstance(conf, dict)
    for key in LOCATION_KEYS:
        conf.get("dataset", {}).pop(key, None)
    for key in RUNTIME_KEYS:
        conf.get("ssl", {}).pop(key, None)
    return conf


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}: {a!r} there, {b!r} now"


def load_dataset(cfg: DictConfig) -> ArrayDataset:
    """The dataset of ``cfg.dataset`` through :func:`al_bench.build.build_dataset`, given only what it needs
    (dataset and paths; no model: the images as stored, never a frozen model's cached features)."""
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("dataset", "paths")}
    return build_dataset(OmegaConf.create({**parts, "model": {}}))


def check_ssl_config(ssl: DictConfig) -> None:
    """Refuse impossible settings with one line (before any data is loaded)."""
    method = str(ssl.get("method", "simclr"))
    if method not in METHODS:
        raise ALBenchError(f"unknown ssl.method {method!r}; valid: {', '.join(METHODS)}")
    if str(ssl.optimizer) not in OPTIMIZERS:
        raise ALBenchError(f"unknown ssl.optimizer {ssl.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    checks = [
        (int(ssl.epochs) >= 1, "ssl.epochs must be >= 1"),
        (int(ssl.batch_size) >= 2, "ssl.batch_size must be >= 2 (a positive pair needs negatives)"),
        (float(ssl.temperature) > 0, "ssl.temperature must be > 0"),
        (float(ssl.lr) > 0, "ssl.lr must be > 0"),
        (int(ssl.input_size) >= 8, "ssl.input_size must be >= 8 pixels"),
        (0 <= int(ssl.warmup_epochs) < int(ssl.epochs), "ssl.warmup_epochs must lie in [0, ssl.epochs)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ALBenchError(message)
    check_arch(str(ssl.arch))


def make_augment(ssl: DictConfig) -> SimCLRAugment:
    aug = OmegaConf.to_container(ssl.augment, resolve=True)
    assert isinstance(aug, dict)
    for key in ("scale", "ratio", "blur_sigma"):
        if key in aug:
            aug[key] = tuple(float(v) for v in aug[key])
    try:
        return SimCLRAugment(size=int(ssl.input_size), **aug)
    except (TypeError, ValueError) as e:
        raise ALBenchError(f"bad ssl.augment: {e}") from None


def _device(accelerator: str) -> torch.device:
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ALBenchError("ssl.accelerator=gpu but no CUDA device is available: use ssl.accelerator=cpu")
    if accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise ALBenchError(f"unknown ssl.accelerator {accelerator!r}; valid: auto, cpu, gpu")
    use_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


def _optimizer(net: SimCLRNet, ssl: DictConfig) -> torch.optim.Optimizer:
    lr, wd = float(ssl.lr), float(ssl.weight_decay)
    if ssl.optimizer == "sgd":
        return torch.optim.SGD(
            net.parameters(),
            lr=lr,
            momentum=float(ssl.momentum),
            weight_decay=wd,
            nesterov=bool(ssl.nesterov),
        )
    cls = torch.optim.Adam if ssl.optimizer == "adam" else torch.optim.AdamW
    return cls(net.parameters(), lr=lr, weight_decay=wd)


def _say(cfg: DictConfig, line: str) -> None:
    if cfg.get("verbose", True):
        print(line, flush=True)


def _finished(cfg: DictConfig, run_dir: Path, config_yaml: str) -> PretrainResult | None:
    """The finished run in ``run_dir`` (None if there is none yet); ConfigMismatchError if its state was
    written for another configuration."""
    state_path, encoder_path = run_dir / STATE_FILE, run_dir / ENCODER_FILE
    if not state_path.exists():
        return None
    state = load_state(state_path)
    if fingerprint(state["config"]) != fingerprint(config_yaml):
        diff = _first_difference(fingerprint(state["config"]), fingerprint(config_yaml))
        raise ConfigMismatchError(
            f"{run_dir} holds a pretraining with another configuration ({diff}): pass overwrite=true to "
            "replace it, or choose another paths.run_dir"
        )
    epochs = int(cfg.ssl.epochs)
    if int(state["epoch"]) < epochs or not encoder_path.exists():
        return None
    _say(cfg, f"al_bench.pretrain: already trained ({epochs} epochs): {encoder_path}")
    return PretrainResult(
        run_dir, encoder_path, epochs, [float(v) for v in state["losses"]], "already_finished"
    )


def run(cfg: DictConfig) -> PretrainResult:
    """Pretrain (or resume, or find finished) the encoder that ``cfg`` describes. Raises ALBenchError.

    ``cfg.stop_after`` (optional): stop after that many epochs in this call; the next call continues.
    """
    ssl = cfg.ssl
    check_ssl_config(ssl)
    run_dir = Path(cfg.paths.run_dir)
    lock = RunLock(run_dir)
    lock.check()  # another process trains here: say so before loading any data
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    device = _device(str(ssl.get("accelerator", "auto")))
    augment = make_augment(ssl)
    config_yaml = saved_config(cfg)
    if not cfg.get("overwrite", False) and (done := _finished(cfg, run_dir, config_yaml)) is not None:
        return done  # nothing to train: no data loaded
    dataset = load_dataset(cfg)
    images = dataset.x_train  # the training split only; labels are never read
    if images.ndim != 4:
        raise ALBenchError(
            f"SimCLR needs images [N, C, H, W]; dataset {cfg.dataset.name} holds {list(images.shape)} inputs"
        )
    with lock:
        return _run_locked(cfg, run_dir, images, augment, config_yaml, device, dataset.mean, dataset.std)


def _run_locked(
    cfg: DictConfig,
    run_dir: Path,
    images: torch.Tensor,
    augment: SimCLRAugment,
    config_yaml: str,
    device: torch.device,
    data_mean: Any,
    data_std: Any,
) -> PretrainResult:
    ssl, seed, epochs = cfg.ssl, int(cfg.seed), int(cfg.ssl.epochs)
    state_path, encoder_path = run_dir / STATE_FILE, run_dir / ENCODER_FILE
    if cfg.get("overwrite", False):
        for name in (STATE_FILE, ENCODER_FILE, CONFIG_FILE):
            (run_dir / name).unlink(missing_ok=True)
    elif (done := _finished(cfg, run_dir, config_yaml)) is not None:  # by another process meanwhile
        return done
    state = load_state(state_path) if state_path.exists() else None

    in_chans = int(images.shape[1])
    mean, std = normalisation(images, data_mean, data_std)
    net = build_simclr(
        str(ssl.arch), in_chans, ssl.head.hidden_dim, int(ssl.head.out_dim), bool(ssl.head.batch_norm), seed
    )
    net.to(device)
    optimizer = _optimizer(net, ssl)
    start, losses = 0, []
    if state is not None:
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses = int(state["epoch"]), [float(v) for v in state["losses"]]
        _say(cfg, f"al_bench.pretrain: resuming {run_dir} after epoch {start}")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, config_yaml)
    cuda = device.type == "cuda"
    if cuda:
        net.to(memory_format=torch.channels_last)
    data = images.to(device)
    views = Views(data, augment, mean, std)
    budget = cfg.get("stop_after")
    stop = epochs if budget is None else min(epochs, start + int(budget))
    spent = 0.0
    for epoch in range(start, stop):
        tic = time.perf_counter()
        lr = cosine_lr(epoch, epochs, float(ssl.lr), float(ssl.min_lr_ratio), int(ssl.warmup_epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        generator = torch_generator(seed, "ssl_epoch", epoch)  # batches and views of this epoch only
        loss = train_epoch(
            net,
            optimizer,
            data,
            int(ssl.batch_size),
            views,
            float(ssl.temperature),
            generator,
            autocast=cuda and bool(ssl.get("amp", True)),
        )
        losses.append(loss)
        save_state(
            state_path,
            {
                "epoch": epoch + 1,
                "net": plain_state_dict(net),
                "optimizer": optimizer.state_dict(),
                "lr": lr,
                "losses": losses,
                "config": config_yaml,
            },
        )
        seconds = time.perf_counter() - tic
        spent += seconds
        eta = spent / (epoch + 1 - start) * (epochs - epoch - 1)
        _say(
            cfg,
            f"ssl epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  loss {loss:.4f}  lr {lr:.4g}  "
            f"{seconds:.1f} s  ETA {format_duration(eta)}",
        )
    if stop < epochs:
        _say(
            cfg,
            f"al_bench.pretrain: stopped after epoch {stop} of {epochs}; run again to continue ({run_dir})",
        )
        return PretrainResult(run_dir, None, stop, losses, "stopped")
    save_encoder(
        encoder_path,
        net.encoder,
        arch=str(ssl.arch),
        in_chans=in_chans,
        input_size=int(ssl.input_size),
        mean=mean,
        std=std,
        config=config_yaml,
        epoch=epochs,
    )
    _say(cfg, f"al_bench.pretrain: encoder written to {encoder_path}")
    return PretrainResult(run_dir, encoder_path, epochs, losses, "finished")
