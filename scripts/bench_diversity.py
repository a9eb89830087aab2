"""Benchmark: BADGE k-means++, core-set k-center greedy and the pool-prediction recorder vs reference code.

    python scripts/bench_diversity.py            # N=20,000 candidates, K=10, D=512, budget 1,000 (minutes)
    python scripts/bench_diversity.py --quick    # small sizes, seconds

References, rewritten here the way the public code does it (not imported, not copied):
- BADGE original (JordanAsh/badge, first release): materialised K*D gradient embeddings; each step
  sklearn ``pairwise_distances`` from the newest centre to every point, a Python loop for the running
  minimum, ``scipy.stats.rv_discrete`` for the D^2 draw.
- BADGE current (JordanAsh/badge's later version, reproduced in many forks): factored distances in
  numpy (with their sqrt, float64 copy and sanity assert), ``rv_discrete`` rebuilt at every step.
- k-center, DeepAL+ (SineZHAN/deepALplus): the full (N+M)^2 distance matrix, then per step a min over the
  candidate x centre sub-matrix, ``np.delete`` of the chosen row and ``np.append`` of its column.
- k-center, google/active-learning: a running min vector, each step ``pairwise_distances`` from the new
  centre to all points.
Slow references are timed on a prefix of their steps and extrapolated; the output says so.
Writes results/bench/diversity.json and results/bench/diversity.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import pairwise_distances
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import measure  # noqa: E402

from al_bench.callbacks.pool_predictions import PoolPredictionRecorder
from al_bench.data.base import ALDataModule, ArrayDataset
from al_bench.models.mlp import MLP
from al_bench.ops.diversity import (
    badge_factors,
    badge_kmeanspp,
    coverage_radius,
    kcenter_greedy,
    kmeanspp_potential,
)

ROOT = Path(__file__).resolve().parents[1]


# ---- measuring ------------------------------------------------------------------------------------------
# ---- BADGE references -----------------------------------------------------------------------------------
class BadgeOriginal:
    """The first public BADGE: materialised embeddings, per-step pairwise distances, Python-loop minimum."""

    def __init__(self, probs: np.ndarray, feats: np.ndarray, rng: np.random.Generator) -> None:
        self.probs, self.feats, self.rng = probs, feats, rng

    def setup(self) -> None:
        n, k = self.probs.shape
        d = self.feats.shape[1]
        # their get_grad_embedding fills the [N, K*D] array class by class in a Python loop; vectorised here
        # (cheaper than theirs), the array is the same: embedding[:, c*D:(c+1)*D] = h * (onehot_c - p_c)
        coef = -self.probs.copy()
        coef[np.arange(n), self.probs.argmax(1)] += 1.0
        self.x = (coef[:, :, None] * self.feats[:, None, :]).reshape(n, k * d)
        first = int(np.argmax([np.linalg.norm(row, 2) for row in self.x]))
        self.chosen = [first]
        self.centre_of = [0.0] * n
        self.mu = [self.x[first]]
        self.d2: np.ndarray | None = None

    def step(self) -> None:
        if self.d2 is None:
            self.d2 = pairwise_distances(self.x, self.mu).ravel().astype(float)
        else:
            new = pairwise_distances(self.x, [self.mu[-1]]).ravel().astype(float)
            for i in range(len(self.x)):  # their running minimum (and centre bookkeeping) is a Python loop
                if self.d2[i] > new[i]:
                    self.centre_of[i] = len(self.mu) - 1
                    self.d2[i] = new[i]
        _ = sum(self.d2)  # printed every step in their code
        dist = (self.d2**2) / sum(self.d2**2)
        law = stats.rv_discrete(name="custm", values=(np.arange(len(self.d2)), dist))
        ind = law.rvs(size=1, random_state=self.rng)[0]
        while ind in self.chosen:
            ind = law.rvs(size=1, random_state=self.rng)[0]
        self.mu.append(self.x[ind])
        self.chosen.append(int(ind))


class BadgeCurrent:
    """BADGE's current public version: factored distances in numpy, rv_discrete rebuilt every step."""

    def __init__(self, probs: np.ndarray, feats: np.ndarray, rng: np.random.Generator) -> None:
        self.probs, self.feats, self.rng = probs, feats, rng

    @staticmethod
    def _distance(r, z, centre) -> np.ndarray:
        (rv, rn), (zv, zn) = r, z
        (cr, crn), (cz, czn) = centre
        dist = rn * zn + crn * czn - 2 * (rv @ cr) * (zv @ cz)
        assert np.min(dist) / np.max(dist) > -1e-4
        return np.sqrt(np.clip(dist, a_min=0, a_max=None))

    def setup(self) -> None:
        n = len(self.probs)
        r = -1.0 * self.probs
        r[np.arange(n), self.probs.argmax(1)] += 1.0
        self.r = (r, np.sum(r**2, axis=-1))
        self.z = (self.feats, np.sum(self.feats**2, axis=-1))
        ind = int(np.argmax(self.r[1] * self.z[1]))
        self.mu = [self._centre(ind)]
        self.d2 = self._distance(self.r, self.z, self.mu[0]).ravel().astype(float)
        self.d2[ind] = 0
        self.chosen, self.chosen_list = {ind}, [ind]

    def _centre(self, i: int):
        return (self.r[0][i], self.r[1][i]), (self.z[0][i], self.z[1][i])

    def step(self) -> None:
        # like theirs, the first step recomputes the distances to the first centre
        new = self._distance(self.r, self.z, self.mu[-1]).ravel().astype(float)
        self.d2 = np.minimum(self.d2, new)
        self.d2[self.chosen_list] = 0
        dist = (self.d2**2) / sum(self.d2**2)
        law = stats.rv_discrete(name="custm", values=(np.arange(len(dist)), dist))
        ind = int(law.rvs(size=1, random_state=self.rng)[0])
        while ind in self.chosen:
            ind = int(law.rvs(size=1, random_state=self.rng)[0])
        self.mu.append(self._centre(ind))
        self.chosen.add(ind)
        self.chosen_list.append(ind)


# ---- k-center references --------------------------------------------------------------------------------
class KCenterFullMatrix:
    """DeepAL+'s k-center greedy: full (N+M)^2 distance matrix, shrinking/growing sub-matrix per step."""

    def __init__(self, emb: np.ndarray, labeled: np.ndarray) -> None:
        self.emb = emb
        self.labeled = np.zeros(len(emb), dtype=bool)
        self.labeled[labeled] = True
        self.initial = self.labeled.copy()

    def setup(self) -> None:
        dist = np.matmul(self.emb, self.emb.T)
        sq = np.array(dist.diagonal()).reshape(len(self.emb), 1)
        dist *= -2
        dist += sq
        dist += sq.T
        self.dist = np.sqrt(dist)
        del dist
        self.mat = self.dist[~self.labeled, :][:, self.labeled]
        self.order: list[int] = []

    def step(self) -> None:
        mat_min = self.mat.min(axis=1)
        q_ = mat_min.argmax()
        q = np.arange(len(self.emb))[~self.labeled][q_]
        self.labeled[q] = True
        self.mat = np.delete(self.mat, q_, 0)
        self.mat = np.append(self.mat, self.dist[~self.labeled, q][:, None], axis=1)
        self.order.append(int(q))


class KCenterPerStep:
    """google/active-learning's kCenterGreedy: running min vector, pairwise_distances to each new centre."""

    def __init__(self, emb: np.ndarray, labeled: np.ndarray) -> None:
        self.emb, self.already = emb, list(labeled)

    def _update(self, centres: list[int]) -> None:
        dist = pairwise_distances(self.emb, self.emb[centres], metric="euclidean")
        if self.min_distances is None:
            self.min_distances = np.min(dist, axis=1).reshape(-1, 1)
        else:
            self.min_distances = np.minimum(self.min_distances, dist)

    def setup(self) -> None:
        self.min_distances: np.ndarray | None = None
        self._update(self.already)
        self.order: list[int] = []

    def step(self) -> None:
        ind = int(np.argmax(self.min_distances))
        assert ind not in self.already
        self._update([ind])
        self.order.append(ind)


def compare_picks(theirs: list[int], ours: list[int]) -> dict:
    """How the reference's picks compare with ours over the picks it made."""
    n = len(theirs)
    diff = next((t for t in range(n) if theirs[t] != ours[t]), None)
    return {
        "compared": n,
        "same_sequence_prefix": diff is None,
        "first_difference": diff,
        "same_set_fraction": len(set(theirs) & set(ours[:n])) / max(n, 1),
    }


def run_reference(ref, steps: int, prefix: int | None) -> dict:
    """Time ``ref.setup()`` then ``steps`` calls of ``ref.step()`` (only ``prefix`` of them when given)."""
    (_, setup_s, setup_mb) = measure(ref.setup)
    timed = steps if prefix is None else min(prefix, steps)
    (_, steps_s, steps_mb) = measure(lambda: [ref.step() for _ in range(timed)])
    return {
        "setup_s": setup_s,
        "steps_timed": timed,
        "steps_s": steps_s,
        "step_s": steps_s / max(timed, 1),
        "peak_mb": max(setup_mb, steps_mb),
        "extrapolated": timed < steps,
    }


# ---- benchmarks -------------------------------------------------------------------------------------------
def badge_data(n: int, k: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2.0 * torch.randn(n, k, generator=g), 1)
    centres = torch.randn(32, d, generator=g)
    feats = centres[torch.randint(0, 32, (n,), generator=g)].add_(torch.randn(n, d, generator=g), alpha=0.5)
    return probs, feats.relu_()


def bench_badge(args: argparse.Namespace) -> dict:
    n, k, d, b = args.n, args.k, args.d, args.budget
    probs, feats = badge_data(n, k, d, args.seed)
    pn, fn = probs.numpy(), feats.numpy()
    a, h = badge_factors(probs, feats)
    a64, h64 = a.double(), h.double()
    out: dict[str, Any] = {}

    sel, s, mb = measure(
        lambda: badge_kmeanspp(*badge_factors(probs, feats), b, torch.Generator().manual_seed(0))
    )
    out["ours"] = {"seconds": s, "peak_mb": mb, "potential": kmeanspp_potential(a64, h64, sel)}
    print(f"badge ours: {s:.2f} s, peak +{mb:.0f} MiB")

    cur = BadgeCurrent(pn, fn, np.random.default_rng(0))
    res = run_reference(cur, b - 1, None)
    res["seconds"] = res["setup_s"] + res["steps_s"]
    res["potential"] = kmeanspp_potential(a64, h64, torch.tensor(cur.chosen_list))
    out["current"] = res
    print(f"badge current (numpy factored + rv_discrete): {res['seconds']:.2f} s")

    orig = BadgeOriginal(pn, fn, np.random.default_rng(0))
    res = run_reference(orig, b - 1, None if args.full_refs else args.prefix_steps)
    res["seconds"] = res["setup_s"] + res["step_s"] * (b - 1)
    res["potential"] = (
        None if res["extrapolated"] else kmeanspp_potential(a64, h64, torch.tensor(orig.chosen))
    )
    out["original"] = res
    how = f"{res['steps_timed']} of {b - 1} steps timed, extrapolated" if res["extrapolated"] else "full run"
    print(f"badge original (materialised K*D, per-step pairwise_distances): {res['seconds']:.1f} s ({how})")

    rand = torch.from_numpy(np.random.default_rng(1).choice(n, size=b, replace=False))
    out["random_potential"] = kmeanspp_potential(a64, h64, rand)
    out["speedup_vs_original"] = out["original"]["seconds"] / out["ours"]["seconds"]
    out["speedup_vs_current"] = out["current"]["seconds"] / out["ours"]["seconds"]
    out["embedding_mb"] = n * k * d * 4 / 2**20
    return out


def bench_kcenter(args: argparse.Namespace) -> dict:
    n, m, d, b = args.n, args.n_labeled, args.d, args.budget
    _, feats = badge_data(n + m, args.k, d, args.seed + 1)
    emb = feats.numpy()
    labeled = np.arange(m)  # the labeled rows first, as CoreSet builds them
    out: dict[str, Any] = {}

    sel, s, mb = measure(lambda: kcenter_greedy(feats, torch.arange(m), b))
    centres = torch.cat([torch.arange(m), sel])
    out["ours"] = {"seconds": s, "peak_mb": mb, "radius": coverage_radius(feats.double(), centres)}
    print(f"kcenter ours: {s:.2f} s, peak +{mb:.0f} MiB")

    ref = KCenterPerStep(emb, labeled)
    res = run_reference(ref, b, None)  # O(N D) per step like ours: always run to the end
    res["seconds"] = res["setup_s"] + res["step_s"] * b
    res.update(compare_picks(ref.order, sel.tolist()))
    if not res["extrapolated"]:
        res["radius"] = coverage_radius(feats.double(), torch.tensor(labeled.tolist() + ref.order))
    out["google_per_step"] = res
    print(f"kcenter google per-step pairwise_distances: {res['seconds']:.1f} s")

    need = 2 * (n + m) ** 2 * 4  # matrix + its sqrt copy
    rows = n + m
    if need > args.ref_mem_gb * 2**30:
        rows = int(math.sqrt(args.ref_mem_gb * 2**30 / 8))
    sub_n = rows - m
    ref = KCenterFullMatrix(emb[:rows], labeled)
    prefix = None if args.full_refs and rows == n + m else args.prefix_steps
    res = run_reference(ref, b, prefix)
    # setup (the matmul) scales with rows^2; a step scans candidates x (M + t) centres: scale by the rows
    # ratio and by the mean number of columns over all steps versus over the timed prefix
    scale_rows = (n + m) / rows
    cols_all = m + (b - 1) / 2
    cols_prefix = m + (res["steps_timed"] - 1) / 2
    res["seconds"] = res["setup_s"] * scale_rows**2 + res["step_s"] * b * scale_rows * cols_all / cols_prefix
    res["timed_rows"] = rows
    res["subsampled"] = rows < n + m
    res["matrix_mb_full"] = (n + m) ** 2 * 4 / 2**20
    if rows == n + m:
        res.update(compare_picks(ref.order, sel.tolist()))
    if not res["extrapolated"] and rows == n + m:
        res["radius"] = coverage_radius(feats.double(), torch.tensor(labeled.tolist() + ref.order))
    res["extrapolated"] = res["extrapolated"] or res["subsampled"]
    out["deepal_full_matrix"] = res
    note = f" (timed on {sub_n} candidates and scaled)" if res["subsampled"] else ""
    print(f"kcenter DeepAL+ full matrix: {res['seconds']:.1f} s{note}")

    out["speedup_vs_full_matrix"] = out["deepal_full_matrix"]["seconds"] / out["ours"]["seconds"]
    out["speedup_vs_per_step"] = out["google_per_step"]["seconds"] / out["ours"]["seconds"]
    radii = [r["radius"] for r in (out["google_per_step"], out["deepal_full_matrix"]) if "radius" in r]
    out["radius_equal"] = (
        all(math.isclose(r, out["ours"]["radius"], rel_tol=1e-5) for r in radii) if radii else None
    )
    return out


def bench_recorder(args: argparse.Namespace) -> dict:
    """Training epochs of an MLP on synthetic data with and without recording pool predictions each epoch."""
    g = torch.Generator().manual_seed(args.seed)
    n_pool, n_train, in_dim, classes = args.rec_pool, args.rec_train, 784, 10
    x = torch.randn(n_pool + n_train, in_dim, generator=g)
    y = torch.randint(0, classes, (n_pool + n_train,), generator=g)
    ds = ArrayDataset("synthetic", x, y, x[:10], y[:10], num_classes=classes)
    data = ALDataModule(ds, batch_size=128, eval_batch_size=1024)
    train_idx, pool_idx = np.arange(n_train), np.arange(n_train, n_train + n_pool)

    def train(record: bool) -> float:
        torch.manual_seed(0)
        net = MLP((in_dim,), classes, hidden=(256, 256))
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        rec = PoolPredictionRecorder(data, pool_idx)
        rec.reset(args.rec_epochs)
        t0 = time.perf_counter()
        for epoch in range(args.rec_epochs):
            net.train()
            for xb, yb, _ in data.train_batches(train_idx, torch.Generator().manual_seed(epoch)):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(xb), yb).backward()
                opt.step()
            if record:
                rec.record(net, epoch)  # what on_train_epoch_end does
        seconds = time.perf_counter() - t0
        if record:
            assert rec.result()["history"].shape == (n_pool, args.rec_epochs)
        return seconds

    train(False)  # warm-up
    without, with_rec = math.inf, math.inf
    for _ in range(args.rec_repeats):  # alternate, keep the best of each (shared CPU)
        without = min(without, train(False))
        with_rec = min(with_rec, train(True))
    print(f"recorder: {without:.2f} s without, {with_rec:.2f} s with ({100 * (with_rec / without - 1):.0f}%)")
    return {
        "pool": n_pool,
        "train": n_train,
        "epochs": args.rec_epochs,
        "seconds_without": without,
        "seconds_with": with_rec,
        "overhead_pct": 100 * (with_rec / without - 1),
        "record_s_per_epoch": (with_rec - without) / args.rec_epochs,
        "repeats": args.rec_repeats,
        "buffer_mb": n_pool * args.rec_epochs / 2**20,
        "buffer_mb_if_int64": n_pool * args.rec_epochs * 8 / 2**20,
    }


# ---- report ---------------------------------------------------------------------------------------------
def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def markdown(r: dict) -> str:
    c, b, k, rec = r["config"], r["badge"], r["kcenter"], r["recorder"]
    lines = [
        "# Diversity and learning-dynamics kernels",
        "",
        f"Config: N={c['n']:,} candidates, K={c['k']}, D={c['d']}, budget={c['budget']:,}, "
        f"labeled M={c['n_labeled']:,} (k-center). CPU: {r['machine']['cpus']} cores visible, "
        f"{r['machine']['torch_threads']} thread(s) for torch and numpy alike, "
        f"load average at start {r['machine']['loadavg_start']}, at end {r['machine']['loadavg_end']} "
        "(shared machine: absolute times are noisy, ratios less so).",
        "",
        "## BADGE (k-means++ on gradient embeddings)",
        "",
        "| implementation | seconds | peak RSS +MiB | k-means++ potential | note |",
        "|---|---:|---:|---:|---|",
        f"| ours (factored, torch) | {_fmt(b['ours']['seconds'])} | {_fmt(b['ours']['peak_mb'], 0)} | "
        f"{_fmt(b['ours']['potential'], 0)} | |",
        f"| current JordanAsh/badge (numpy factored, rv_discrete) | {_fmt(b['current']['seconds'])} | "
        f"{_fmt(b['current']['peak_mb'], 0)} | {_fmt(b['current']['potential'], 0)} | full run |",
        f"| original JordanAsh/badge (materialised K*D) | {_fmt(b['original']['seconds'])} | "
        f"{_fmt(b['original']['peak_mb'], 0)} | {_fmt(b['original']['potential'], 0)} | "
        + (
            f"{b['original']['steps_timed']} steps timed, extrapolated |"
            if b["original"]["extrapolated"]
            else "full run |"
        ),
        f"| uniform random selection | | | {_fmt(b['random_potential'], 0)} | for scale |",
        "",
        f"Speed-up: **{b['speedup_vs_original']:.0f}x** vs original, "
        f"**{b['speedup_vs_current']:.1f}x** vs current. "
        f"The materialised embedding alone is {b['embedding_mb']:.0f} MiB.",
        "",
        "## Core-set k-center greedy",
        "",
        "| implementation | seconds | peak RSS +MiB | coverage radius | note |",
        "|---|---:|---:|---:|---|",
        f"| ours (running min, chunked matmul) | {_fmt(k['ours']['seconds'])} | "
        f"{_fmt(k['ours']['peak_mb'], 0)} | "
        f"{_fmt(k['ours']['radius'], 4)} | |",
    ]
    labels = {
        "deepal_full_matrix": "DeepAL+ full distance matrix",
        "google_per_step": "google/active-learning per-step pairwise_distances",
    }
    for key, label in labels.items():
        e = k[key]
        notes = []
        if e.get("subsampled"):
            notes.append(f"timed on {e['timed_rows']:,} rows, scaled")
        if e["extrapolated"]:
            notes.append(f"{e['steps_timed']} steps timed, extrapolated")
        if "same_sequence_prefix" in e:
            if e["same_sequence_prefix"]:
                notes.append(f"same {e['compared']} picks in the same order")
            else:
                notes.append(
                    f"picks differ from pick {e['first_difference']} on (float32 vs their float64 "
                    f"distances, near ties); {100 * e['same_set_fraction']:.1f}% of the picks in common"
                )
        lines.append(
            f"| {label} | {_fmt(e['seconds'])} | {_fmt(e['peak_mb'], 0)} | {_fmt(e.get('radius'), 4)} | "
            f"{'; '.join(notes) or 'full run'} |"
        )
    lines += [
        "",
        f"Speed-up: **{k['speedup_vs_full_matrix']:.0f}x** vs the full matrix, "
        f"**{k['speedup_vs_per_step']:.1f}x** "
        f"vs per-step pairwise distances. Coverage radius equal where computed: {k['radius_equal']}. "
        f"The full matrix would take {k['deepal_full_matrix']['matrix_mb_full']:,.0f} MiB.",
        "",
        "## Pool-prediction recorder (label dispersion / forgetting)",
        "",
        f"MLP 784-256-256-10 trained {rec['epochs']} epochs on {rec['train']:,} samples "
        f"(hand loop, batch 128, best of {rec['repeats']}), predicting {rec['pool']:,} pool samples "
        f"after every epoch: {_fmt(rec['seconds_without'])} s without, "
        f"{_fmt(rec['seconds_with'])} s with the recorder "
        f"({rec['overhead_pct']:+.0f}%; {_fmt(rec['record_s_per_epoch'], 3)} s per recorded epoch). "
        f"History buffer {rec['buffer_mb']:.2f} MiB "
        f"(uint8; int64 would be {rec['buffer_mb_if_int64']:.2f} MiB).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds); every reference runs fully")
    p.add_argument("--n", type=int, default=20_000, help="candidates")
    p.add_argument("--k", type=int, default=10, help="classes")
    p.add_argument("--d", type=int, default=512, help="feature dimension")
    p.add_argument("--budget", type=int, default=1_000)
    p.add_argument("--n-labeled", type=int, default=1_000, help="labeled rows (k-center initial centres)")
    p.add_argument("--prefix-steps", type=int, default=20, help="steps timed for slow references")
    p.add_argument("--full-refs", action="store_true", help="run every reference to the end (slow)")
    p.add_argument("--ref-mem-gb", type=float, default=4.0, help="memory cap for the full-matrix reference")
    p.add_argument("--rec-pool", type=int, default=20_000)
    p.add_argument("--rec-train", type=int, default=5_000)
    p.add_argument("--rec-epochs", type=int, default=5)
    p.add_argument("--rec-repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for torch and numpy BLAS alike (1: stable on a busy CPU)",
    )
    p.add_argument("--out-dir", type=Path, default=ROOT / "results" / "bench")
    args = p.parse_args(argv)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    limits = threadpool_limits(limits=args.threads)  # numpy / scipy BLAS, for the references
    if args.quick:
        args.n, args.d, args.budget, args.n_labeled = 2_000, 64, 60, 100
        args.rec_pool, args.rec_train, args.rec_epochs, args.rec_repeats = 1_000, 256, 2, 1
        args.full_refs = True

    result = {
        "config": {k: v for k, v in vars(args).items() if k != "out_dir"},
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    result["badge"] = bench_badge(args)
    result["kcenter"] = bench_kcenter(args)
    result["recorder"] = bench_recorder(args)
    result["machine"]["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("diversity.json", json.dumps(result, indent=2)), ("diversity.md", markdown(result))):
        tmp = args.out_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out_dir / name)
    print(markdown(result))
    print(f"wrote {args.out_dir / 'diversity.json'} and {args.out_dir / 'diversity.md'}")
    limits.restore_original_limits()
    torch.set_num_threads(torch_threads)
    return result


if __name__ == "__main__":
    main()
