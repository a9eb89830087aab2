"""Benchmark: BAIT's factored kernel (al_bench.ops.bait) vs a reference written the way the authors' code is.

    python scripts/bench_bait.py            # N=20,000 candidates, L=1,000 labeled, K=10, D=512, b=1,000
    python scripts/bench_bait.py --quick    # N=600, L=60, K=10, D=16, b=20: seconds, every step of both run

Reference (rewritten here, not imported, not copied): JordanAsh/badge ``query_strategies/bait_sampling.py``
with ``strategy.get_exp_grad_embedding``, in torch on the same device and dtype:
- the Fisher factors materialised for the whole pool: ``xt [N + L, K, K * D]``, row k = ``sqrt(p_k) (e_k - p)
  (kron) h`` (their per-point Python loops are vectorised here: cheaper than theirs, same array);
- ``fisher`` and ``init``: batches of ``xt_^T xt_`` -> [batch, P, P] summed (their batch 1000 is capped so
  that one batch stays under ``--ref-batch-mb``);
- each forward step scores every candidate with ``X @ currentInv @ fisher @ currentInv @ X^T @ inv(I + X
  currentInv X^T)`` ([N, K, P] x [P, P] products, left to right as written) and commits with ``currentInv -=
  currentInv X^T inv(.) X currentInv`` (a [P, P] x [P, P] product); the backward pass does the same on the
  chosen rows with ``-I``.
At full size one reference step costs ~4 N K P^2 multiply-adds and ``xt`` alone is (N + L) K P floats, so its
set-up is timed on ``--ref-rows`` pool rows and its steps on ``--ref-rows`` candidate rows (+ the real [P, P]
commit), then scaled to the full size (linear in rows, times the number of steps); the output says so.
With --quick both run every step in float64 and must pick the same points; float32 picks are compared too.
Writes results/bench/bait.json and results/bench/bait.md.
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

from al_bench.ops.bait import bait_greedy, bait_objective

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import PeakRSS, measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---- the authors' way -------------------------------------------------------------------------------------
def exp_grad_embedding(probs: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Their ``get_exp_grad_embedding``: [N, K, K * D].

    ``xt[n, j, c*D:(c+1)*D] = h_n ((c == j) - p_nc) sqrt(p_nj)``.
    """
    n, k = probs.shape
    coef = torch.eye(k, dtype=probs.dtype)[None] - probs[:, None, :]  # [N, j, c]
    coef = coef * probs.sqrt()[:, :, None]
    return (coef[:, :, :, None] * feats[:, None, None, :]).reshape(n, k, -1)


def mean_outer(xt: torch.Tensor, batch: int) -> torch.Tensor:
    """Their fisher / init loop: ``sum over batches of sum_0(xt_^T @ xt_ / len(xt))`` -> [P, P]."""
    p = xt.shape[-1]
    out = torch.zeros(p, p, dtype=xt.dtype)
    for i in range(math.ceil(len(xt) / batch)):
        xt_ = xt[i * batch : (i + 1) * batch]
        out = out + torch.sum(torch.matmul(xt_.transpose(1, 2), xt_) / len(xt), 0)
    return out


class AuthorsBait:
    """``select(X, K, fisher, iterates, lamb, nLabeled)`` of bait_sampling.py, split into steps for timing."""

    def __init__(
        self, x: torch.Tensor, budget: int, fisher: torch.Tensor, init: torch.Tensor, lam: float, n_lab: int
    ):
        dim = x.shape[-1]
        self.rank, self.budget, self.fisher = x.shape[-2], budget, fisher
        self.current_inv = torch.inverse(
            lam * torch.eye(dim, dtype=x.dtype) + init * n_lab / (n_lab + budget)
        )
        self.x = x * np.sqrt(budget / (n_lab + budget))
        self.inds: list[int] = []  # their indsAll: the forward picks, then what survives the backward pass
        self.forward: list[int] = []
        self.removed: list[int] = []

    def _trace_est(self, xt_: torch.Tensor, sign: float) -> torch.Tensor:
        eye = torch.eye(self.rank, dtype=xt_.dtype)
        inner = torch.inverse(sign * eye + xt_ @ self.current_inv @ xt_.transpose(1, 2))
        big = torch.finfo(inner.dtype).max
        inner[torch.isinf(inner)] = torch.sign(inner[torch.isinf(inner)]) * big
        return torch.diagonal(
            xt_ @ self.current_inv @ self.fisher @ self.current_inv @ xt_.transpose(1, 2) @ inner,
            dim1=-2,
            dim2=-1,
        ).sum(-1)

    def _commit(self, ind: int, sign: float) -> None:
        xt_ = self.x[ind].unsqueeze(0)
        eye = torch.eye(self.rank, dtype=xt_.dtype)
        inner = torch.inverse(sign * eye + xt_ @ self.current_inv @ xt_.transpose(1, 2))
        self.current_inv = (
            self.current_inv - self.current_inv @ xt_.transpose(1, 2) @ inner @ xt_ @ self.current_inv
        )[0]

    def forward_step(self, rows: torch.Tensor | None = None) -> None:
        """One forward step; ``rows``: score only these candidate rows (timing at scale)."""
        trace_est = self._trace_est(self.x if rows is None else self.x[rows], 1.0).numpy()
        order = np.argsort(trace_est)[::-1]
        ind = next(int(j) for j in order if (j if rows is None else int(rows[j])) not in self.inds)
        ind = ind if rows is None else int(rows[ind])
        self.inds.append(ind)
        self.forward.append(ind)
        self._commit(ind, 1.0)

    def backward_step(self) -> None:
        trace_est = self._trace_est(self.x[self.inds], -1.0)
        del_ind = int(torch.argmin(-1 * trace_est))
        self._commit(self.inds[del_ind], -1.0)
        self.removed.append(self.inds[del_ind])
        del self.inds[del_ind]

    def run(self, forward: int) -> list[int]:
        for _ in range(forward):
            self.forward_step()
        for _ in range(forward - self.budget):
            self.backward_step()
        return list(self.inds)


def ref_batch(p: int, itemsize: int, cap_mb: float) -> int:
    """Their fisher batch (1000), capped so that one [batch, P, P] product stays under ``cap_mb``."""
    return max(1, min(1000, int(cap_mb * 2**20 / (p * p * itemsize))))


def run_authors_full(pool_p, pool_h, n_lab, budget, lam, forward, batch) -> tuple[AuthorsBait, dict]:
    """Every step of the reference (small sizes); the pool is labeled rows first, then the candidates."""
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        xt = exp_grad_embedding(pool_p, pool_h)
        fisher = mean_outer(xt, batch)
        init = mean_outer(xt[:n_lab], batch)
        ref = AuthorsBait(xt[n_lab:], budget, fisher, init, lam, n_lab)
        ref.run(forward)
    return ref, {"seconds": time.perf_counter() - t0, "peak_mb": mem.mb, "extrapolated": False}


def time_authors_scaled(pool_p, pool_h, n_lab, budget, lam, forward, batch, rows, steps) -> dict:
    """The reference's cost at full size from ``rows`` pool rows (set-up) and ``rows`` candidates (steps)."""
    n_pool, k = pool_p.shape
    n = n_pool - n_lab
    p = k * pool_h.shape[1]
    item = pool_p.element_size()
    out: dict[str, Any] = {
        "timed_rows": rows,
        "timed_steps": steps,
        "fisher_batch": batch,
        "extrapolated": True,
    }
    with PeakRSS() as mem:
        sub = torch.arange(min(rows, n_pool))
        xt, out["embed_s"], _ = measure(lambda: exp_grad_embedding(pool_p[sub], pool_h[sub]))
        fisher, out["fisher_s"], _ = measure(lambda: mean_outer(xt, batch))
        init = fisher
        t0 = time.perf_counter()
        ref = AuthorsBait(xt, budget, fisher, init, lam, n_lab)  # the [P, P] inverse, at full P
        out["inverse_s"] = time.perf_counter() - t0
        cand = torch.arange(len(xt))
        t_rows = t_commit = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            trace_est = ref._trace_est(ref.x[cand], 1.0)
            t_rows += time.perf_counter() - t0
            ind = int(torch.argmax(trace_est))
            t0 = time.perf_counter()
            ref._commit(ind, 1.0)
            t_commit += time.perf_counter() - t0
    per_row_embed = out["embed_s"] / len(sub)
    per_row_fisher = out["fisher_s"] / len(sub)
    out["row_step_s"] = t_rows / (steps * len(cand))
    out["commit_s"] = t_commit / steps
    backward_rows = sum(forward - i for i in range(forward - budget))
    out["setup_s"] = per_row_embed * n_pool + per_row_fisher * (n_pool + n_lab) + out["inverse_s"]
    out["forward_s"] = forward * (n * out["row_step_s"] + out["commit_s"])
    out["backward_s"] = backward_rows * out["row_step_s"] + (forward - budget) * out["commit_s"]
    out["seconds"] = out["setup_s"] + out["forward_s"] + out["backward_s"]
    out["peak_mb_timed"] = mem.mb
    # what the full-size reference holds at once (float elements of this dtype): xt for the pool, the scaled
    # candidate copy X, two [N, K, P] temporaries of the left-to-right product chain, a fisher batch, 3 [P, P]
    out["memory_mb_full"] = (
        (n_pool * k * p + n * k * p + 2 * n * k * p + batch * p * p + 3 * p * p) * item / 2**20
    )
    out["xt_mb_full"] = n_pool * k * p * item / 2**20
    return out


# ---- data and runs ----------------------------------------------------------------------------------------
def make_data(n: int, k: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of 2 x Gaussian logits [n, K]; ReLU features around 32 Gaussian centres [n, D]."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2.0 * torch.randn(n, k, generator=g, dtype=torch.float64), 1)
    centres = torch.randn(32, d, generator=g, dtype=torch.float64)
    feats = centres[torch.randint(0, 32, (n,), generator=g)]
    feats = feats + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return probs, feats.relu_() / math.sqrt(d) * 4  # features of norm ~ a few, like a trained net's


def compare(theirs: list[int], ours: list[int]) -> dict:
    diff = next((t for t in range(min(len(theirs), len(ours))) if theirs[t] != ours[t]), None)
    return {
        "same_sequence": theirs == ours,
        "first_difference": diff,
        "same_set_fraction": len(set(theirs) & set(ours)) / max(len(ours), 1),
    }


def picks_agree(ref: AuthorsBait, res) -> dict:
    """How the reference's forward picks, removals and final selection compare with ours."""
    out = {
        "forward": compare(ref.forward, res.forward.tolist()),
        "removed": compare(ref.removed, res.removed.tolist()),
        "selected": compare(ref.inds, res.selected.tolist()),
    }
    out["identical"] = all(v["same_sequence"] for v in out.values())
    return out


def bench(args: argparse.Namespace) -> dict:
    n, k, d, b, n_lab = args.n, args.k, args.d, args.budget, args.n_labeled
    probs, feats = make_data(n + n_lab, k, d, args.seed)
    lp, lf, cp, cf = probs[:n_lab], feats[:n_lab], probs[n_lab:], feats[n_lab:]  # labeled rows first
    forward = min(n, int(args.oversample * b))
    p = k * d
    out: dict[str, Any] = {}

    def ours(dtype: torch.dtype):
        return bait_greedy(
            cp.to(dtype), cf.to(dtype), lp.to(dtype), lf.to(dtype), b, args.lam, args.oversample
        )

    res, seconds, mb = measure(lambda: ours(torch.float32))
    out["ours"] = {
        "seconds": seconds,
        "peak_mb": mb,
        "objective_start": res.objective[0],
        "objective_after_forward": res.objective[forward],
        "objective_final": res.objective[-1],
        "pp_matrix_mb": p * p * 4 / 2**20,
    }
    print(f"ours (float32): {seconds:.1f} s, peak RSS +{mb:.0f} MiB", flush=True)
    check = torch.float64 if args.quick else torch.float32
    direct = bait_objective(cp.to(check), cf.to(check), lp.to(check), lf.to(check), res.selected, b, args.lam)
    out["ours"]["objective_final_direct"] = direct
    out["ours"]["objective_drift"] = abs(res.objective[-1] - direct) / abs(direct)
    rand = torch.from_numpy(np.random.default_rng(args.seed).choice(n, size=b, replace=False))
    out["random_objective"] = bait_objective(
        cp.to(check), cf.to(check), lp.to(check), lf.to(check), rand, b, args.lam
    )

    pool_p, pool_h = probs.float(), feats.float()
    batch = ref_batch(p, 4, args.ref_batch_mb)
    if args.quick:
        ref32, info = run_authors_full(pool_p, pool_h, n_lab, b, args.lam, forward, batch)
        info["fisher_batch"] = batch
        info["float32"] = picks_agree(ref32, res)
        ours64 = ours(torch.float64)
        ref64, _ = run_authors_full(
            probs, feats, n_lab, b, args.lam, forward, ref_batch(p, 8, args.ref_batch_mb)
        )
        info["float64"] = picks_agree(ref64, ours64)
        info["ours_float64_vs_float32"] = compare(ours64.selected.tolist(), res.selected.tolist())
        out["reference"] = info
        print(
            f"reference (authors' way): {info['seconds']:.2f} s, float64 picks identical: "
            f"{info['float64']['identical']}",
            flush=True,
        )
    else:
        info = time_authors_scaled(
            pool_p, pool_h, n_lab, b, args.lam, forward, batch, args.ref_rows, args.ref_steps
        )
        out["reference"] = info
        days = info["seconds"] / 86400
        print(f"reference (authors' way): {info['seconds']:.0f} s extrapolated ({days:.1f} days)", flush=True)
    out["speedup"] = out["reference"]["seconds"] / out["ours"]["seconds"]
    out["mean_feature_norm"] = float(feats.norm(dim=1).mean())
    out["forward_steps"] = forward
    return out


# ---- report ---------------------------------------------------------------------------------------------
def markdown(r: dict) -> str:
    c, m, res = r["config"], r["machine"], r["result"]
    o, ref = res["ours"], res["reference"]
    steps = f"{res['forward_steps']:,} forward + {res['forward_steps'] - c['budget']:,} backward steps"
    quick = " (--quick)" if c["quick"] else ""
    ours_row = "ours (al_bench.ops.bait: Kronecker factors, r x r state per candidate, Woodbury)"
    ref_row = "authors' way (materialised [N, K, P] factors, [N, K, P] x [P, P] per step)"
    lines = [
        "# BAIT (Fisher forward-backward greedy): factored kernel vs the authors' way",
        "",
        f"Sizes{quick}: N={c['n']:,} candidates, L={c['n_labeled']:,} labeled, K={c['k']} classes, "
        f"D={c['d']} features (P = K*D = {c['k'] * c['d']:,}), budget b={c['budget']:,}, oversample "
        f"{c['oversample']:g} ({steps}), lambda={c['lam']:g}, float32, mean feature norm "
        f"{res['mean_feature_norm']:.2f}.",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs visible, {m['torch_threads']} torch thread(s), torch "
        f"{m['torch']}; load average {m['loadavg_start']} at start, {m['loadavg_end']} at end (shared "
        "machine: absolute times are noisy, the ratio less so).",
        "",
        "| implementation | seconds | peak RSS +MiB | note |",
        "|---|---:|---:|---|",
        f"| {ours_row} | {o['seconds']:,.1f} | {o['peak_mb']:,.0f} | full run |",
    ]
    if ref["extrapolated"]:
        note = (
            f"set-up timed on {ref['timed_rows']} pool rows, steps on {ref['timed_rows']} candidates x "
            f"{ref['timed_steps']} steps + the real [P, P] commit, scaled; {ref['peak_mb_timed']:,.0f} MiB "
            "measured while timing"
        )
        secs = f"{ref['seconds']:,.0f} (= {ref['seconds'] / 86400:,.1f} days)"
        lines.append(f"| {ref_row} | {secs} | {ref['memory_mb_full']:,.0f} (computed) | {note} |")
    else:
        lines.append(f"| {ref_row} | {ref['seconds']:,.2f} | {ref['peak_mb']:,.0f} | full run |")
    lines += ["", f"Speed-up: **{res['speedup']:,.0f}x**.", ""]
    if ref["extrapolated"]:
        lines += [
            f"Reference break-down (s, scaled): set-up {ref['setup_s']:,.0f} (fisher batch "
            f"{ref['fisher_batch']}), forward {ref['forward_s']:,.0f} ({ref['row_step_s'] * 1e3:.2f} ms per "
            f"candidate per step + {ref['commit_s']:.2f} s per commit), backward {ref['backward_s']:,.0f}. "
            f"Its factors alone take {ref['xt_mb_full']:,.0f} MiB; ours keeps two [P, P] matrices "
            f"({2 * o['pp_matrix_mb']:,.0f} MiB) and r x r state per candidate.",
            "",
        ]
    else:
        f64, f32 = ref["float64"], ref["float32"]
        lines += [
            "Same picks? Float64, both running every step: forward sequence, removal sequence and final "
            f"selection identical: **{f64['identical']}**. Float32 (theirs vs ours, each in its own "
            f"arithmetic): identical: {f32['identical']} ({100 * f32['selected']['same_set_fraction']:.0f}% "
            f"of the final set in common; forward sequences first differ at step "
            f"{f32['forward']['first_difference']}).",
            "",
        ]
    lines += [
        f"Objective tr[M_S^-1 I_U]: {o['objective_start']:.5g} before, {o['objective_after_forward']:.5g} "
        f"after the forward pass, {o['objective_final']:.5g} final (recomputed from scratch: "
        f"{o['objective_final_direct']:.5g}; relative drift of the incremental updates "
        f"{o['objective_drift']:.1e}); a uniformly random batch of b: {res['random_objective']:.5g}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds); every reference step runs")
    p.add_argument("--n", type=int, default=20_000, help="candidates")
    p.add_argument("--n-labeled", type=int, default=1_000, help="labeled points")
    p.add_argument("--k", type=int, default=10, help="classes")
    p.add_argument("--d", type=int, default=512, help="feature dimension")
    p.add_argument("--budget", type=int, default=1_000)
    p.add_argument("--lam", type=float, default=1.0, help="ridge (the authors' default 1)")
    p.add_argument("--oversample", type=float, default=2.0)
    p.add_argument("--ref-rows", type=int, default=64, help="rows the reference is timed on at full size")
    p.add_argument("--ref-steps", type=int, default=2, help="forward steps the reference is timed on")
    p.add_argument(
        "--ref-batch-mb", type=float, default=1024.0, help="cap on one [batch, P, P] fisher product"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a busy CPU)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "results" / "bench")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.n_labeled, args.d, args.budget = 600, 60, 16, 20
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    result = {
        "config": {k: v for k, v in vars(args).items() if k != "out_dir"},
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    result["result"] = bench(args)
    result["machine"]["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("bait.json", json.dumps(result, indent=2)), ("bait.md", markdown(result))):
        tmp = args.out_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out_dir / name)
    print(markdown(result))
    print(f"wrote {args.out_dir / 'bait.json'} and {args.out_dir / 'bait.md'}")
    torch.set_num_threads(torch_threads)
    return result


if __name__ == "__main__":
    main()
