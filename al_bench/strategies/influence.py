"""Influence-function strategies: ISAL (He/Liu et al., ICCV 2021) and RALIF (Xia & Henao, TMLR 2023).

Thin wrappers over :mod:`al_bench.ops.influence`; the formulas, their shapes and the deviations from the
authors' code are documented there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.ops.influence import (
    FlatParams,
    chain_schedule,
    fit_logistic_head,
    isal_influence,
    lissa,
    logistic_grad_dot,
    logistic_probs,
    logistic_summed_grad,
    make_hvp,
    make_logistic_hvp,
    ralif_diverse_sample,
    ralif_expected_influence,
    summed_loss_grad,
)
from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy, top_k


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ALBenchError(message)


class ISAL(ScoreStrategy):
    """Influence Selection for Active Learning: query the candidates whose addition most lowers the
    validation loss, to first order.

    - ``v`` = sum of the loss gradients over the validation split (``ctx.data.val_indices``, true labels;
      the authors' classification code used the test set, which a benchmark must never touch);
    - ``s_test`` = :func:`lissa` of ``v`` on the labeled set's loss Hessian: ``repeats`` chains of ``steps``
      updates, each chain drawing ``hvp_batch_size`` labeled samples per step (its own shuffled passes,
      seeded from ``ctx.rng``; the authors used one sample per step);
    - influence(u) = ``-G_u . s_test / |U|`` with ``G_u`` the loss gradient at the pseudo-label
      ``argmax p(x_u)``, ``|U|`` = number of candidates.

    ISAL queries the most *negative* influence, so ``score = -influence = G_u . s_test / |U|`` (higher =
    query first). ``params="last_layer"`` differentiates the head ``nn.Linear`` only, in closed form on
    penultimate features (exact, no backbone pass per step); ``"weights"`` (every weight tensor with
    ``ndim != 1``, the authors' choice) or a list of parameter names goes through torch.func on the whole
    network (vmapped HVPs, ``G_u . s`` by one forward-mode ``jvp`` per batch of ``grad_batch_size``).
    """

    needs_validation = True

    def __init__(
        self,
        params: str | Sequence[str] = "last_layer",
        damping: float = 0.01,
        scale: float = 1e4,
        steps: int = 250,
        repeats: int = 4,
        hvp_batch_size: int = 1,
        grad_batch_size: int = 256,
    ) -> None:
        self.params = params if isinstance(params, str) else [str(p) for p in params]
        _require(
            not isinstance(self.params, str) or self.params in ("last_layer", "weights"),
            f"isal: unknown params {params!r}; valid: last_layer, weights or a list of parameter names",
        )
        _require(damping >= 0 and scale > 0, "isal: damping must be >= 0 and scale > 0")
        _require(steps >= 1 and repeats >= 1, "isal: steps and repeats must be >= 1")
        _require(hvp_batch_size >= 1 and grad_batch_size >= 1, "isal: batch sizes must be >= 1")
        self.damping = float(damping)
        self.scale = float(scale)
        self.steps = int(steps)
        self.repeats = int(repeats)
        self.hvp_batch_size = int(hvp_batch_size)
        self.grad_batch_size = int(grad_batch_size)

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        """``-influence`` [N] of every candidate (higher = larger predicted drop of the validation loss)."""
        val = np.asarray(ctx.data.val_indices)
        _require(
            len(val) > 0,
            "isal needs a validation split: set dataset.val_size (e.g. dataset.val_size=100)",
        )
        _require(len(ctx.labeled) > 0, "isal needs a non-empty labeled set")
        schedule = chain_schedule(
            len(ctx.labeled), self.repeats, self.steps, self.hvp_batch_size, ctx.torch_generator()
        )  # [R, steps, B] positions into ctx.labeled
        if self.params == "last_layer":
            return -self._last_layer_influence(ctx, val, schedule)
        return -self._network_influence(ctx, val, schedule)

    def _lissa(self, hvp, v: torch.Tensor) -> torch.Tensor:
        try:
            return lissa(hvp, v, self.damping, self.scale, self.steps, self.repeats)
        except FloatingPointError as e:
            raise ALBenchError(f"isal: {e}; raise strategy.scale") from e

    def _last_layer_influence(
        self, ctx: SelectionContext, val: np.ndarray, schedule: torch.Tensor
    ) -> torch.Tensor:
        head = ctx.model.head
        w, b = head.weight.detach().double().cpu(), head.bias.detach().double().cpu()
        val_features = logits_and_features(ctx.model, ctx.data, val, bf16=ctx.bf16)[1].double()
        v = logistic_summed_grad(w, b, val_features, ctx.data.labels(val).cpu())
        labeled = ctx.labeled_features().double()

        def rows(step: int) -> torch.Tensor:
            return schedule[:, step]

        hvp = make_logistic_hvp(labeled, logistic_probs(w, b, labeled), 0.0, rows)
        s_test = self._lissa(hvp, v)
        n = len(ctx.candidates)
        return -logistic_grad_dot(w, b, ctx.features().double(), s_test) / max(n, 1)

    def _network_influence(
        self, ctx: SelectionContext, val: np.ndarray, schedule: torch.Tensor
    ) -> torch.Tensor:
        model, data = ctx.model, ctx.data
        try:
            flat = FlatParams(model, self.params)
        except ValueError as e:
            raise ALBenchError(f"isal: {e}") from e
        v = summed_loss_grad(model, flat, data.eval_batches(val))
        labeled = torch.as_tensor(ctx.labeled, dtype=torch.long)
        r, b = schedule.shape[0], schedule.shape[2]

        def sampler(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            x, y, _ = data.get_batch(labeled[schedule[:, step]].reshape(-1))
            return x.view(r, b, *x.shape[1:]), y.view(r, b)

        s_test = self._lissa(make_hvp(model, None, sampler, flat), v)
        n = len(ctx.candidates)
        # the candidates' true labels that eval_batches also yields are never read: pseudo-labels only
        parts = [
            isal_influence(model, flat, x, s_test, pool_size=n, chunk_size=self.grad_batch_size)
            for x, _, _ in data.eval_batches(ctx.candidates)
        ]
        return torch.cat(parts).cpu() if parts else torch.zeros(0)


class RALIF(Strategy):
    """Ranking with expected influence + diverse sampling (RALIF), on a logistic head refit on penultimate
    features.

    1. fit a logistic regression (W, b) on the labeled features (:func:`fit_logistic_head`, L2 ``l2``);
    2-4. E(u) = truncated expected influence (:func:`ralif_expected_influence`: pseudo-labels from the
       logistic head, ``v`` from the pseudo-labeled candidates, ``s`` by LiSSA on the labeled set with
       ``damping``, ``scale``, ``l2``, ``steps``, ``repeats`` chains over minibatches of ``hvp_batch_size``,
       classes with ``p(c|u) > tau / C``);
    5. keep the ``candidate_fraction`` of candidates with the lowest E (widened to ``budget`` when that is
       fewer), then k-means++ D^2 sampling in feature space (:func:`ralif_diverse_sample`) whose initial
       distances are to the *whole* labeled set. The authors' ``diverse_sample`` only used the last
       labeled point (its list of labeled centres is never filled): a bug, not reproduced.

    With ``tau >= C`` no class passes the threshold, every E is +inf and the selection degenerates to
    diverse sampling among random candidates: a ``RuntimeWarning`` says so (the paper's tau = 4 assumes
    C >= 5, e.g. CIFAR-10).
    """

    def __init__(
        self,
        tau: float = 4.0,
        candidate_fraction: float = 0.1,
        damping: float = 0.01,
        scale: float = 25.0,
        l2: float = 1e-4,
        steps: int = 50,
        repeats: int = 20,
        hvp_batch_size: int = 4096,
        fit_max_iter: int = 500,
    ) -> None:
        _require(tau > 0, "ralif: tau must be > 0")
        _require(0 < candidate_fraction <= 1, "ralif: candidate_fraction must be in (0, 1]")
        _require(damping >= 0 and scale > 0 and l2 >= 0, "ralif: damping, l2 must be >= 0 and scale > 0")
        _require(
            steps >= 1 and repeats >= 1 and hvp_batch_size >= 1,
            "ralif: steps, repeats and hvp_batch_size must be >= 1",
        )
        _require(fit_max_iter >= 1, "ralif: fit_max_iter must be >= 1")
        self.tau = float(tau)
        self.candidate_fraction = float(candidate_fraction)
        self.damping = float(damping)
        self.scale = float(scale)
        self.l2 = float(l2)
        self.steps = int(steps)
        self.repeats = int(repeats)
        self.hvp_batch_size = int(hvp_batch_size)
        self.fit_max_iter = int(fit_max_iter)

    def expected_influence(self, ctx: SelectionContext) -> torch.Tensor:
        """E(u) [N] of every candidate (lower = query first), float64."""
        num_classes = int(ctx.data.num_classes)
        if self.tau >= num_classes:
            warnings.warn(
                f"ralif: tau={self.tau} >= {num_classes} classes, so no class passes p > tau/C and every E is"
                " +inf: selection is diverse sampling among random candidates (lower strategy.tau)",
                RuntimeWarning,
                stacklevel=2,
            )
        _require(len(ctx.labeled) > 0, "ralif needs a non-empty labeled set")
        labeled = ctx.labeled_features().double()
        w, b = fit_logistic_head(labeled, ctx.labeled_labels(), num_classes, self.l2, self.fit_max_iter)
        try:
            return ralif_expected_influence(
                w,
                b,
                labeled,
                ctx.features().double(),
                tau=self.tau,
                damping=self.damping,
                scale=self.scale,
                l2=self.l2,
                steps=self.steps,
                repeats=self.repeats,
                batch_size=self.hvp_batch_size,
                generator=ctx.torch_generator(),
            )
        except FloatingPointError as e:
            raise ALBenchError(f"ralif: {e}; raise strategy.scale") from e

    def select(self, ctx: SelectionContext) -> np.ndarray:
        n = len(ctx.candidates)
        if ctx.budget > n:
            raise ValueError(f"cannot select {ctx.budget} of {n} candidates")
        e = self.expected_influence(ctx)
        m = max(int(n * self.candidate_fraction), ctx.budget)
        lowest = top_k(-e, m, ctx.rng)  # positions of the m lowest E, ascending E, ties in random order
        picks = ralif_diverse_sample(ctx.features()[lowest], ctx.labeled_features(), ctx.budget, ctx.rng)
        return ctx.candidates[lowest[picks]]
