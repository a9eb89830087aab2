"""Strategy interface: ``select(ctx) -> global indices``; score-based strategies implement ``score`` only."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from al_bench.data.base import ALDataModule
from al_bench.errors import ALBenchError
from al_bench.inference import logits_and_features
from al_bench.models.base import ALNet
from al_bench.pool import ActivePool
from al_bench.posteriors.mc_dropout import MCDropoutPosterior, dropout_layers
from al_bench.seeding import torch_generator_from


class SelectionContext:
    """Everything a strategy may read when it selects; read-only by convention.

    Attributes:
        model: the network trained this cycle (an :class:`ALNet`).
        data: the data module (global indices, batches, device).
        pool: the :class:`ActivePool` (labeled/unlabeled global indices).
        budget: how many indices to return.
        cycle: the cycle that is ending (0 = after training on the initial set).
        rng: a seeded ``np.random.Generator`` private to this selection.
        candidates: global indices [N] the strategy may choose from (the unlabeled pool or a random
            subset of it when ``budget.pool_subset`` is set), ascending.
        dynamics: what training callbacks recorded this cycle, by key (e.g. ``"pool_predictions"``).
        fit_model: ``fit_model(seed, indices=None, **options) -> ALNet`` trains a fresh model with the run's
            recipe on the labeled set, or on the given global ``indices`` (duplicates allowed: bootstrap
            resamples); ``options`` are :func:`al_bench.training.train_model`'s (``epochs_fraction``,
            ``init_state``, ``prepare``, ``early_stopping``, ``callbacks``, ``aux``); committees, ensembles
            and posterior sources; None where unavailable.
        bf16: run pool inference in bf16 autocast (CUDA only).
        embeddings: ``embeddings(kind) -> [n_train, D]``, the run's fixed embeddings (``pretrained`` /
            ``ssl``, :class:`al_bench.embeddings.RunEmbeddings`); None where unavailable.
    The accessors below compute pool outputs lazily, once per cycle, and cache them.
    """

    def __init__(
        self,
        model: ALNet,
        data: ALDataModule,
        pool: ActivePool,
        budget: int,
        cycle: int,
        rng: np.random.Generator,
        candidates: np.ndarray | None = None,
        dynamics: dict[str, Any] | None = None,
        fit_model: Callable[..., ALNet] | None = None,
        bf16: bool = False,
        embeddings: Callable[[str], torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.data = data
        self.pool = pool
        self.budget = int(budget)
        self.cycle = int(cycle)
        self.rng = rng
        self.candidates = np.asarray(
            pool.unlabeled_indices if candidates is None else candidates, dtype=np.int64
        )
        self.dynamics = dynamics or {}
        self.fit_model = fit_model
        self.bf16 = bf16
        self.embeddings = embeddings
        self._cache: dict[Any, Any] = {}

    @property
    def labeled(self) -> np.ndarray:
        """Global indices labeled so far [L], ascending."""
        return self.pool.labeled_indices

    @property
    def device(self) -> torch.device:
        return self.data.device

    def torch_generator(self, device: str | torch.device = "cpu") -> torch.Generator:
        """A torch.Generator seeded from ``rng`` (each call advances ``rng``)."""
        return torch_generator_from(self.rng, device)

    def embedding(self, kind: str, indices: np.ndarray) -> torch.Tensor:
        """Embedding [n, D] (float32, CPU) of global ``indices``: ``model`` = the penultimate features of
        ``model`` (the candidates' and labeled set's are cached), ``pretrained`` / ``ssl`` = rows of the run's
        fixed embedding (see :mod:`al_bench.embeddings`)."""
        indices = np.asarray(indices, dtype=np.int64)
        if kind == "model":
            if np.array_equal(indices, self.candidates):
                return self.features()
            if np.array_equal(indices, self.labeled):
                return self.labeled_features()
            return logits_and_features(self.model, self.data, indices, bf16=self.bf16)[1]
        if self.embeddings is None:
            raise ALBenchError(f"embedding={kind} is not available in this selection (no run embeddings)")
        return self.embeddings(kind)[torch.as_tensor(indices)]

    def _outputs(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self.candidates if which == "candidates" else self.labeled
        key = ("outputs", which)
        if key not in self._cache:
            self._cache[key] = logits_and_features(self.model, self.data, indices, bf16=self.bf16)
        return self._cache[key]

    def logits(self) -> torch.Tensor:
        """Logits [N, C] of the candidates (float32, CPU)."""
        return self._outputs("candidates")[0]

    def probs(self) -> torch.Tensor:
        """Softmax probabilities [N, C] of the candidates (float32, CPU)."""
        if "probs" not in self._cache:
            self._cache["probs"] = self.logits().softmax(-1)
        return self._cache["probs"]

    def features(self) -> torch.Tensor:
        """Penultimate features [N, D] of the candidates (float32, CPU)."""
        return self._outputs("candidates")[1]

    def labeled_logits(self) -> torch.Tensor:
        """Logits [L, C] of the labeled set."""
        return self._outputs("labeled")[0]

    def labeled_features(self) -> torch.Tensor:
        """Penultimate features [L, D] of the labeled set."""
        return self._outputs("labeled")[1]

    def labeled_labels(self) -> torch.Tensor:
        """The oracle's labels [L] of the labeled set (CPU): what was bought, noisy under
        ``scenario=label_noise``; the data module holds the oracle's answers, never a hidden truth."""
        return self.data.labels(self.labeled).cpu()

    def mc_posterior(self, n_samples: int) -> MCDropoutPosterior:
        """T = ``n_samples`` consistent MC-dropout functions of the model, drawn once per selection.

        Pass t applies the same dropout masks to every input, so probabilities of any index sets scored
        through it (candidates, labeled set, target inputs) are joint samples of the same T functions.
        """
        key = ("mc_posterior", int(n_samples))
        if key not in self._cache:
            if not dropout_layers(self.model):  # every pass would be the same function
                raise ALBenchError("MC dropout needs a model with dropout p > 0; this model has none")
            self._cache[key] = MCDropoutPosterior(
                self.model, n_samples, self.torch_generator(), bf16=self.bf16
            )
        return self._cache[key]

    def mc_probs(self, n_samples: int, indices: np.ndarray | None = None) -> torch.Tensor:
        """MC-dropout probabilities [N, T, C] (float32, CPU) under :meth:`mc_posterior`'s T functions.

        ``indices``: global indices to score (default: the candidates, cached).
        """
        posterior = self.mc_posterior(n_samples)
        if indices is not None:
            return posterior.probs(self.data, np.asarray(indices, dtype=np.int64))
        key = ("mc", int(n_samples))
        if key not in self._cache:
            self._cache[key] = posterior.probs(self.data, self.candidates)
        return self._cache[key]

    def posterior_probs(self, source: Any, n_samples: int, indices: np.ndarray | None = None) -> torch.Tensor:
        """Probabilities [N, T, C] (float32, CPU) of T = ``n_samples`` consistent functions from ``source`` (a
        :class:`al_bench.posteriors.base.PosteriorSource`: MC dropout, an ensemble, snapshots, ...).

        The functions are drawn (networks trained) once per selection and (source, T); every index set scored
        through them gets joint samples of the same T functions. ``indices``: global indices to score
        (default: the candidates, cached).
        """
        key = ("posterior", source.key, int(n_samples))
        if key not in self._cache:
            self._cache[key] = source.draw(self, int(n_samples))
        posterior = self._cache[key]
        if indices is not None:
            return posterior.probs(self.data, np.asarray(indices, dtype=np.int64))
        probs_key = ("posterior_probs", source.key, int(n_samples))
        if probs_key not in self._cache:
            self._cache[probs_key] = posterior.probs(self.data, self.candidates)
        return self._cache[probs_key]


class Strategy:
    """Base class: a strategy returns exactly ``ctx.budget`` unique global indices from ``ctx.candidates``.

    Strategies that need something recorded during training return Lightning callbacks from
    :meth:`training_callbacks`; whatever those record reaches ``ctx.dynamics``.
    """

    #: the strategy reads ``ctx.data.val_indices``; the run is refused before training when there are none.
    needs_validation: bool = False
    #: the strategy samples MC-dropout functions; the run is refused before training when the model has no
    #: dropout layer with p > 0.
    needs_mc_dropout: bool = False

    def training_callbacks(self, data: ALDataModule, candidates: np.ndarray, cycle: int) -> list:
        """Lightning callbacks to attach to this cycle's training (default: none).

        A callback that records something for selection has a ``key: str`` attribute and a ``result()``
        method; the loop stores ``ctx.dynamics[key] = result()`` after training.
        """
        return []

    def auxiliary_module(self, net: ALNet) -> torch.nn.Module | None:
        """An extra module trained jointly with ``net`` this cycle (e.g. LL4AL's loss predictor), or None.

        It must implement ``training_loss(inter, logits, per_sample_loss, y, epoch, max_epochs) -> Tensor``
        where ``inter = net.intermediate_features(x)`` (a list of [B, *] tensors; ``logits =
        net.head(inter[-1])``) and ``per_sample_loss`` is the cross-entropy [B]; its parameters join the
        optimizer and its loss is added to the classification loss.
        """
        return None

    def pseudo_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(global indices [P], labels [P]) to add to the training set of the next cycle only (CEAL).

        They never count as labels: the pool, ``n_labeled`` and the curve ignore them.
        """
        return None

    def state_dict(self) -> dict:
        """What the strategy must carry across a resume (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def select(self, ctx: SelectionContext) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class ScoreStrategy(Strategy):
    """A strategy defined by one score per candidate: higher = query first.

    Subclasses implement :meth:`score`; selection is top-``budget`` with ties broken by a seeded random
    order (never by index position), and NaN scores ranked last with a warning.
    """

    def score(self, ctx: SelectionContext) -> torch.Tensor | np.ndarray:
        """Scores [len(ctx.candidates)], higher = more informative."""
        raise NotImplementedError

    def select(self, ctx: SelectionContext) -> np.ndarray:
        scores = self.score(ctx)
        return ctx.candidates[top_k(scores, ctx.budget, ctx.rng)]


def top_k(scores: torch.Tensor | np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``k`` highest ``scores`` [N], ties broken by a random order from ``rng``."""
    s = (
        scores.detach().cpu().double().numpy()
        if isinstance(scores, torch.Tensor)
        else np.asarray(scores, float)
    )
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if k > len(s):
        raise ValueError(f"cannot select {k} of {len(s)} candidates")
    nan = np.isnan(s)
    if nan.any():
        warnings.warn(f"{int(nan.sum())} NaN scores ranked last", RuntimeWarning, stacklevel=2)
        s = np.where(nan, -np.inf, s)
    perm = rng.permutation(len(s))
    order = perm[np.argsort(-s[perm], kind="stable")]
    return order[:k]
