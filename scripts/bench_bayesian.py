"""Benchmark the Bayesian kernels against the way the public reference code does the same work.

(1) MC-dropout scoring of a pool: ``al_bench.posteriors.mc_dropout_probs`` (consistent masks: one per pass,
    shared by every input; trunk once, dropout tail T times on the repeated trunk output) against baal's
    ModelWrapper way (the input batch stacked T times in memory and the whole network run on it). Models
    whose dropout all sits after a conv trunk: a small VGG-style CNN with a global-average-pooled trunk (the
    trunk holds ~99.9% of the multiply-adds: the chosen model for the T/2 goal) and the DBAL CNN of Gal et
    al. 2017 (trunk ~94%: its multiply-add bound is 9.6x at T = 20). Correctness: with every dropout p set
    to 1e-12 (no unit is ever dropped) both ways must give the same probabilities (al_bench refuses p = 0
    outright: MC dropout without dropout is a user error).
(2) BatchBALD candidate scoring, one greedy step: ``al_bench.ops.batchbald.joint_entropies_with`` (one GEMM
    per chunk of candidates, x log x in place, one GEMV) against batchbald_redux's ``compute_batch`` (a
    per-candidate matmul loop, then -log(p) * p / q over a [chunk, S, C] tensor), both given the SAME joint
    configurations (exact and sampled); plus a short greedy run where both must pick the same points.

Slow references are timed on a prefix of the pool and extrapolated (printed when done).
Writes ``results/bench/bayesian.json`` and ``results/bench/bayesian.md``.

    python scripts/bench_bayesian.py            # issue sizes: pool 10,000, T = 20; S = 10,000, N = 10,000
    python scripts/bench_bayesian.py --quick    # seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from al_bench.data.base import ALDataModule, ArrayDataset, IndexBatches
from al_bench.models.base import ALNet, enable_dropout_only
from al_bench.ops.batchbald import (
    JointConfigurations,
    batchbald,
    candidate_rows,
    conditional_entropies,
    joint_entropies_with,
)
from al_bench.ops.bayesian import bald
from al_bench.posteriors.mc_dropout import mc_dropout_probs

# ---- models: every dropout after the trunk ---------------------------------------------------------------


class ConvTrunkCNN(ALNet):
    """conv3x3(3->16)-relu-conv3x3(16->32)-relu-pool2-conv3x3(32->64)-relu-global-avg-pool |
    dropout-fc(64->128)-relu-dropout | fc(128->10) on 3x32x32: ~9.9M multiply-adds in the trunk, ~9.5k in the
    tail (dropout on pooled features, as in ResNet-style nets)."""

    def __init__(self, num_classes: int = 10, p: float = 0.5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.rest = nn.Sequential(nn.Dropout(p), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(p))
        self.feature_dim, self.num_classes = 128, num_classes
        self.head = nn.Linear(128, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)


class DBALCNN(ALNet):
    """Gal et al. 2017: conv32(4x4)-relu-conv32(4x4)-relu-pool2 | dropout0.25-dense128-relu-dropout0.5 | dense
    on 1x28x28: ~8.2M multiply-adds in the trunk, ~0.50M in the tail."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 4), nn.ReLU(), nn.Conv2d(32, 32, 4), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.rest = nn.Sequential(
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(32 * 11 * 11, 128), nn.ReLU(), nn.Dropout(0.5)
        )
        self.feature_dim, self.num_classes = 128, num_classes
        self.head = nn.Linear(128, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def tail_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(z)


def _macs(model: ALNet, in_shape: tuple[int, ...]) -> tuple[float, float]:
    """(trunk, tail) multiply-adds per sample of the conv and linear layers."""
    counts = {"trunk": 0.0, "tail": 0.0}
    stage = ["trunk"]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            counts[stage[0]] += output[0].numel() * k
        elif isinstance(module, nn.Linear):
            counts[stage[0]] += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        z = model.trunk(torch.zeros(1, *in_shape))
        stage[0] = "tail"
        model.tail(z)
    for h in handles:
        h.remove()
    return counts["trunk"], counts["tail"]


# ---- (1) MC dropout ----------------------------------------------------------------------------------------


@torch.inference_mode()
def baal_style_mc_probs(
    model: ALNet, data: ALDataModule, indices: np.ndarray, n_samples: int, batch_size: int, seed: int
):
    """baal's ModelWrapper.predict_on_batch with replicate_in_memory: stack the batch T times, run the whole
    network once on [T * B, ...], view as [T, B, C]. Returned in al_bench's layout [N, T, C]."""
    enable_dropout_only(model)
    torch.manual_seed(seed)
    out = []
    for x, _, _ in IndexBatches(data, indices, batch_size, shuffle=False):
        b = x.shape[0]
        stacked = torch.stack([x] * n_samples).view(n_samples * b, *x.shape[1:])
        logits = model(stacked).view(n_samples, b, -1)
        out.append(logits.softmax(-1).permute(1, 0, 2))
    model.eval()
    return torch.cat(out)


def _set_dropout(model: nn.Module, p: float | None, saved: dict | None = None) -> dict:
    saved = {} if saved is None else saved
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            if p is None:
                m.p = saved[name]
            else:
                saved[name] = m.p
                m.p = p
    return saved


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_mc_dropout(
    name: str, model: ALNet, in_shape, pool: int, prefix: int, n_samples: int, ours_batch: int, ref_batch: int
) -> dict:
    torch.manual_seed(0)
    x = torch.randn(pool, *in_shape)
    y = torch.randint(0, 10, (pool,))
    ds = ArrayDataset("bench", x, y, x[:1], y[:1], 10)
    data = ALDataModule(ds, eval_batch_size=ours_batch)
    indices = np.arange(pool)
    head = indices[:prefix]
    model.eval()
    # warm-up (allocator, thread pool) on a small slice
    mc_dropout_probs(model, data, indices[: min(64, pool)], n_samples, 0)
    baal_style_mc_probs(model, data, indices[: min(16, pool)], n_samples, ref_batch, 0)

    # correctness: dropout p ~ 0 (never drops) -> both ways are the deterministic network
    saved = _set_dropout(model, 1e-12)
    ours_det = mc_dropout_probs(model, data, head, n_samples, 0)
    ref_det = baal_style_mc_probs(model, data, head, n_samples, ref_batch, 0)
    _set_dropout(model, None, saved)
    det_diff = float((ours_det - ref_det).abs().max())

    ours, t_ours = _timed(lambda: mc_dropout_probs(model, data, indices, n_samples, 1))
    ref, t_ref_prefix = _timed(lambda: baal_style_mc_probs(model, data, head, n_samples, ref_batch, 1))
    t_ref = t_ref_prefix * pool / prefix
    if prefix < pool:
        print(f"  [{name}] baal-style reference timed on the first {prefix} of {pool} samples, extrapolated")
    trunk_macs, tail_macs = _macs(model, tuple(in_shape))
    ideal = n_samples * (trunk_macs + tail_macs) / (trunk_macs + n_samples * tail_macs)
    res = {
        "model": name,
        "pool": pool,
        "T": n_samples,
        "trunk_macs_per_sample": trunk_macs,
        "tail_macs_per_sample": tail_macs,
        "ideal_speedup_from_macs": ideal,
        "ours_s": t_ours,
        "baal_style_s": t_ref,
        "baal_style_timed_prefix": prefix,
        "speedup": t_ref / t_ours,
        "goal_speedup": n_samples / 2,
        "goal_met": t_ref / t_ours >= n_samples / 2,
        "p0_max_abs_prob_diff": det_diff,
        "p0_identical_within_1e-5": det_diff <= 1e-5,
        "mean_bald_ours_prefix": float(bald(ours[:prefix]).mean()),
        "mean_bald_baal_style_prefix": float(bald(ref).mean()),
    }
    print(
        f"  [{name}] ours {t_ours:.2f}s  baal-style {t_ref:.2f}s  speedup {res['speedup']:.1f}x "
        f"(MAC bound {ideal:.1f}x, goal {n_samples / 2:g}x)  p=0 max |diff| {det_diff:.2e}"
    )
    return res


# ---- (2) BatchBALD -----------------------------------------------------------------------------------------


def redux_style_joint_entropies(
    joint_probs_m_k: torch.Tensor, probs_n_k_c: torch.Tensor, sampled: bool, chunk: int
) -> torch.Tensor:
    """batchbald_redux's Exact/SampledJointEntropy.compute_batch, in al_bench's layout: for every candidate
    one matmul [M, K] x [K, C] into a [chunk, M, C] buffer, then -log(p) p (/ q for samples), summed."""
    n, k, c = probs_n_k_c.shape
    m = joint_probs_m_k.shape[0]
    out = torch.empty(n, dtype=joint_probs_m_k.dtype)
    q_1_m_1 = joint_probs_m_k.mean(dim=1, keepdim=True)[None]
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        probs_b_m_c = torch.empty((b, m, c), dtype=joint_probs_m_k.dtype)
        for i in range(b):
            torch.matmul(joint_probs_m_k, probs_n_k_c[start + i], out=probs_b_m_c[i])
        probs_b_m_c /= k
        if sampled:
            out[start : start + b] = (
                torch.sum(-torch.log(probs_b_m_c) * probs_b_m_c / q_1_m_1, dim=(1, 2)) / m
            )
        else:
            out[start : start + b] = torch.sum(-torch.log(probs_b_m_c) * probs_b_m_c, dim=(1, 2))
    return out


def redux_style_greedy(probs: torch.Tensor, budget: int, num_samples: int, seed: int, chunk: int):
    """batchbald_redux's get_batchbald_batch loop; the joint configurations come from al_bench's sampler with
    the same generator seed, so both greedy runs see the same samples."""
    n, t, c = probs.shape
    g = torch.Generator().manual_seed(seed)
    cond = conditional_entropies(probs)
    joint = JointConfigurations.empty(t, probs.dtype)
    chosen: list[int] = []
    scores: list[float] = []
    for i in range(budget):
        if i > 0:
            last = probs[chosen[-1]]
            if joint.sampled:
                joint = joint.extend_sampled(last, g)
            elif c**i <= num_samples:
                joint = joint.extend_exact(last)
            else:
                joint = JointConfigurations.sample(probs[chosen], num_samples, g)
        s = redux_style_joint_entropies(joint.log_probs.exp(), probs, joint.sampled, chunk)
        s -= cond + cond[chosen].sum()
        s[chosen] = -float("inf")
        score, idx = s.max(dim=0)
        chosen.append(int(idx))
        scores.append(float(score))
    return torch.tensor(chosen), torch.tensor(scores, dtype=torch.float64)


def _random_mc(n: int, t: int, c: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = 2.0 * torch.randn(n, 1, c, generator=g, dtype=torch.float64)
    return (base + torch.randn(n, t, c, generator=g, dtype=torch.float64)).softmax(-1)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


def bench_batchbald_step(
    n: int, t: int, c: int, num_samples: int, k: int, prefix: int, ref_chunk: int
) -> dict:
    probs = _random_mc(n, t, c, seed=1)
    g = torch.Generator().manual_seed(0)
    batch = torch.randperm(n, generator=g)[:k]
    if c**k <= num_samples:
        joint = JointConfigurations.exact(probs[batch])
    else:
        joint = JointConfigurations.sample(probs[batch], num_samples, g)
    cond = conditional_entropies(probs)
    cond_batch = cond[batch].sum()

    def ours_scores():
        return joint_entropies_with(joint, candidate_rows(probs), c) - cond - cond_batch

    ours_scores()  # warm-up
    ours, t_ours = _timed(ours_scores)
    joint_probs = joint.log_probs.exp()  # the SAME configurations, as batchbald_redux holds them
    head = probs[:prefix]
    ref_h, t_ref_prefix = _timed(
        lambda: redux_style_joint_entropies(joint_probs, head, joint.sampled, ref_chunk)
    )
    ref = ref_h - cond[:prefix] - cond_batch
    t_ref = t_ref_prefix * n / prefix
    mode = "sampled" if joint.sampled else "exact"
    if prefix < n:
        print(f"  [{mode}] batchbald_redux-style reference timed on {prefix} of {n} candidates, extrapolated")
    ours_h = ours[:prefix] + cond[:prefix] + cond_batch
    res = {
        "mode": mode,
        "candidates": n,
        "T": t,
        "C": c,
        "batch_size_k": k,
        "configurations_S": joint.n_configurations,
        "ours_s": t_ours,
        "redux_style_s": t_ref,
        "redux_style_timed_prefix": prefix,
        "redux_style_chunk": ref_chunk,
        "speedup": t_ref / t_ours,
        "max_rel_err_joint_entropy": _rel_err(ours_h, ref_h),
        "max_abs_err_score_over_max_abs_score": float((ours[:prefix] - ref).abs().max() / ref.abs().max()),
    }
    res["equal_within_1e-6_rel"] = (
        max(res["max_rel_err_joint_entropy"], res["max_abs_err_score_over_max_abs_score"]) <= 1e-6
    )
    print(
        f"  [{mode}] k={k} S={joint.n_configurations} N={n}: ours {t_ours:.3f}s  redux-style {t_ref:.3f}s  "
        f"speedup {res['speedup']:.1f}x  max rel err {res['max_rel_err_joint_entropy']:.1e}"
    )
    return res


def bench_batchbald_greedy(n: int, t: int, c: int, num_samples: int, budget: int, ref_chunk: int) -> dict:
    probs = _random_mc(n, t, c, seed=2)
    (pos, scores), t_ours = _timed(
        lambda: batchbald(probs, budget, num_samples, generator=torch.Generator().manual_seed(5))
    )
    (ref_pos, ref_scores), t_ref = _timed(
        lambda: redux_style_greedy(probs, budget, num_samples, 5, ref_chunk)
    )
    res = {
        "candidates": n,
        "T": t,
        "C": c,
        "num_samples": num_samples,
        "budget": budget,
        "ours_s": t_ours,
        "redux_style_s": t_ref,
        "speedup": t_ref / t_ours,
        "same_picks": bool(torch.equal(pos, ref_pos)),
        "max_rel_err_scores": _rel_err(scores, ref_scores),
    }
    print(
        f"  [greedy] budget {budget} N={n}: ours {t_ours:.2f}s  redux-style {t_ref:.2f}s  "
        f"speedup {res['speedup']:.1f}x  same picks {res['same_picks']}  "
        f"max rel err {res['max_rel_err_scores']:.1e}"
    )
    return res


# ---- report -----------------------------------------------------------------------------------------------


def _markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Bayesian kernels benchmark",
        "",
        f"CPU: {m['cpu']}, torch threads {m['torch_threads']}, "
        f"load average at start {m['load_average_start']}"
        f" (other processes shared the cores: treat ratios as indicative). torch {m['torch']}."
        + (" Quick sizes." if results["quick"] else ""),
        "",
        "## MC-dropout pool scoring",
        "",
        "Ours: trunk once, dropout tail T times. baal-style: the whole network on the batch stacked T times.",
        "",
        "| model | pool | T | trunk/tail MACs | ours s | baal-style s | speedup | MAC bound | goal T/2 "
        "| p=0 max diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["mc_dropout"]:
        lines.append(
            f"| {r['model']} | {r['pool']} | {r['T']} | {r['trunk_macs_per_sample'] / 1e6:.1f}M / "
            f"{r['tail_macs_per_sample'] / 1e6:.2f}M | {r['ours_s']:.2f} | {r['baal_style_s']:.2f}"
            f"{'*' if r['baal_style_timed_prefix'] < r['pool'] else ''} | {r['speedup']:.1f}x | "
            f"{r['ideal_speedup_from_macs']:.1f}x | {'met' if r['goal_met'] else 'missed'} | "
            f"{r['p0_max_abs_prob_diff']:.1e} |"
        )
    lines += [
        "",
        "\\* timed on a prefix of the pool and extrapolated.",
        "",
        "The conv-trunk CNN is the model chosen for the T/2 goal: its dropout acts on globally pooled",
        "features, so the tail holds ~0.1% of the multiply-adds. In the DBAL CNN the dense layer after the",
        "first dropout (3872 -> 128) runs T times in both ways, which bounds the gain at 9.6x for T = 20.",
        "",
        "## BatchBALD candidate scoring, one greedy step, same joint configurations",
        "",
        "| joint | k | S | candidates | ours s | batchbald_redux-style s | speedup | max rel err |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["batchbald_step"]:
        lines.append(
            f"| {r['mode']} | {r['batch_size_k']} | {r['configurations_S']} | {r['candidates']} | "
            f"{r['ours_s']:.3f} | {r['redux_style_s']:.3f}"
            f"{'*' if r['redux_style_timed_prefix'] < r['candidates'] else ''} | {r['speedup']:.1f}x | "
            f"{max(r['max_rel_err_joint_entropy'], r['max_abs_err_score_over_max_abs_score']):.1e} |"
        )
    g = results["batchbald_greedy"]
    lines += [
        "",
        "Reference chunks of 256 candidates (batchbald_redux's toma starts at 1024 and halves on OOM).",
        "",
        f"Greedy run (budget {g['budget']}, N {g['candidates']}, S {g['num_samples']}, exact then sampled): "
        f"ours {g['ours_s']:.2f} s, batchbald_redux-style {g['redux_style_s']:.2f} s ({g['speedup']:.1f}x); "
        f"same picks: {g['same_picks']}; max rel err of scores {g['max_rel_err_scores']:.1e}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    q = args.quick
    results: dict = {
        "quick": q,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_start": [round(v, 2) for v in os.getloadavg()],
        },
    }
    print("(1) MC-dropout pool scoring")
    results["mc_dropout"] = [
        bench_mc_dropout(
            "conv-trunk CNN 3x32x32",
            ConvTrunkCNN(),
            (3, 32, 32),
            pool=128 if q else 10_000,
            prefix=32 if q else 1000,
            n_samples=20,
            ours_batch=256,
            ref_batch=32,
        ),
        bench_mc_dropout(
            "DBAL CNN 1x28x28",
            DBALCNN(),
            (1, 28, 28),
            pool=128 if q else 10_000,
            prefix=32 if q else 1000,
            n_samples=20,
            ours_batch=256,
            ref_batch=32,
        ),
    ]
    print("(2) BatchBALD")
    n, s = (200, 1000) if q else (10_000, 10_000)
    results["batchbald_step"] = [
        bench_batchbald_step(n, 20, 10, s, k=3, prefix=n if q else 2000, ref_chunk=256),
        bench_batchbald_step(n, 20, 10, s, k=5, prefix=n if q else 1000, ref_chunk=256),
    ]
    results["batchbald_greedy"] = bench_batchbald_greedy(
        100 if q else 1000, 20, 10, 1000 if q else 2000, budget=5, ref_chunk=256
    )
    args.out.mkdir(parents=True, exist_ok=True)
    _write_atomic(args.out / "bayesian.json", json.dumps(results, indent=2, default=_jsonable))
    _write_atomic(args.out / "bayesian.md", _markdown(results))
    print(f"wrote {args.out / 'bayesian.json'} and {args.out / 'bayesian.md'}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    raise TypeError(type(v))


if __name__ == "__main__":
    main()
