"""Learned and hybrid strategies: LL4AL, VAAL, CAL, diverse mini-batch, TypiClust, CEAL."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.data.base import ALDataModule
from al_bench.embeddings import check_embedding
from al_bench.models.base import ALNet
from al_bench.models.loss_prediction import LossPredictionModule
from al_bench.ops.cal import cal_scores
from al_bench.ops.clustering import diverse_minibatch_select, typiclust_select
from al_bench.ops.uncertainty import entropy, margin
from al_bench.strategies.adversarial import endless_batches, kaiming_init, latent_discriminator
from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy, top_k


# ---- LL4AL -------------------------------------------------------------------------------------------------
class LL4AL(ScoreStrategy):
    """Learning loss (Yoo & Kweon, CVPR 2019): query the highest loss predicted by a module trained jointly.

    :meth:`auxiliary_module` builds a fresh :class:`LossPredictionModule` each cycle (hidden width
    ``hidden``); the loop trains it jointly with the classifier (loss = CE + ``weight`` * ranking loss with
    ``margin``; its gradient to the backbone stops after ``stop_grad_fraction`` of the epochs, the authors'
    120 of 200). The score is the module's predicted loss on the candidates (both networks in eval mode).
    The authors keep one module across cycles together with their warm-started backbone; the loop here
    builds a fresh one each cycle, like the freshly initialised network.

    The module needs the input shape for its probe forward: it is read from ``net.in_shape`` when the model
    has one, else from the data module seen by :meth:`training_callbacks`.
    """

    def __init__(
        self, margin: float = 1.0, weight: float = 1.0, stop_grad_fraction: float = 0.6, hidden: int = 128
    ) -> None:
        self.margin = float(margin)
        self.weight = float(weight)
        self.stop_grad_fraction = float(stop_grad_fraction)
        self.hidden = int(hidden)
        self._module: LossPredictionModule | None = None
        self._in_shape: tuple[int, ...] | None = None

    def training_callbacks(self, data: ALDataModule, candidates: np.ndarray, cycle: int) -> list:
        self._in_shape = tuple(data.in_shape)
        return []

    def auxiliary_module(self, net: ALNet) -> LossPredictionModule:
        in_shape = getattr(net, "in_shape", None) or self._in_shape
        if in_shape is None:
            raise RuntimeError(
                "LL4AL needs the input shape before building its loss module: give the net an `in_shape` "
                "attribute or call training_callbacks(data, ...) before auxiliary_module(net)"
            )
        self._module = LossPredictionModule(
            net, tuple(in_shape), self.hidden, self.margin, self.weight, self.stop_grad_fraction
        )
        return self._module

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        module = self._module
        if module is None:
            raise RuntimeError("LL4AL has no trained loss module: the loop must train auxiliary_module(net)")
        net = ctx.model
        param = next(net.parameters(), None)
        module.to(param.device if param is not None else ctx.device)
        was_net, was_module = net.training, module.training
        net.eval()
        module.eval()
        out = []
        try:
            with torch.inference_mode():
                for x, _, _ in ctx.data.eval_batches(ctx.candidates):
                    out.append(module.predict(net.intermediate_features(x)).float().cpu())
        finally:
            net.train(was_net)
            module.train(was_module)
        return torch.cat(out) if out else torch.zeros(0)


# ---- VAAL --------------------------------------------------------------------------------------------------
class _ConvVAE(nn.Module):
    """The authors' VAE (sinhasam/vaal ``model.py``) sized for a square S x S input, S a power of two >= 4.

    Encoder: log2(S) - 1 blocks Conv(4, stride 2, pad 1, no bias) -> BN -> ReLU with ``width`` * 2^i channels
    (capped at 1024) down to 2 x 2, then Linear -> mu, logvar. Decoder: Linear(latent -> C_last * 4 * 4), the
    mirrored ConvTranspose(4, 2, 1) -> BN -> ReLU blocks up to S x S, then a 1 x 1 ConvTranspose to the image
    channels. For 3 x 32 x 32 and width 128 this is exactly their network (128-256-512-1024 channels).
    Smaller or non-square images are zero-padded (bottom/right) to S and the reconstruction is cropped back.
    """

    def __init__(self, in_shape: Sequence[int], latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = (int(v) for v in in_shape)
        self.h, self.w = h, w
        self.side = 1 << max(2, math.ceil(math.log2(max(h, w))))
        n_down = int(math.log2(self.side)) - 1
        chans = [min(width * 2**i, 1024) for i in range(n_down)]
        enc: list[nn.Module] = []
        for c_in, c_out in zip([c, *chans[:-1]], chans):
            enc += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.fc_mu = nn.Linear(chans[-1] * 4, latent_dim)
        self.fc_logvar = nn.Linear(chans[-1] * 4, latent_dim)
        dec: list[nn.Module] = [nn.Linear(latent_dim, chans[-1] * 16), nn.Unflatten(1, (chans[-1], 4, 4))]
        for c_in, c_out in zip(chans[::-1][:-1], chans[::-1][1:]):
            dec += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        dec.append(nn.ConvTranspose2d(chans[0], c, 1))
        self.decoder = nn.Sequential(*dec)
        kaiming_init(self.encoder, self.decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each [B, latent]."""
        x = F.pad(x, (0, self.side - self.w, 0, self.side - self.h))
        z = self.encoder(x)
        return self.fc_mu(z), self.fc_logvar(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)[..., : self.h, : self.w]


class _MLPVAE(nn.Module):
    """VAE for inputs that are not images of at least 4 x 4 (our choice; the authors only have the conv VAE):
    flatten -> Linear(D, 512) -> ReLU -> Linear(512, 256) -> ReLU -> mu, logvar; the decoder mirrors it."""

    def __init__(self, in_shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.in_shape = tuple(int(v) for v in in_shape)
        d = math.prod(self.in_shape)
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(d, 512), nn.ReLU(True), nn.Linear(512, 256), nn.ReLU(True)
        )
        self.fc_mu = nn.Linear(256, latent_dim)
        self.fc_logvar = nn.Linear(256, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(True), nn.Linear(256, 512), nn.ReLU(True), nn.Linear(512, d)
        )
        kaiming_init(self.encoder, self.decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.fc_mu(z), self.fc_logvar(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(len(z), *self.in_shape)


def _vae_forward(vae: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction, mu, logvar) with one reparameterised sample z = mu + eps * exp(logvar / 2)."""
    mu, logvar = vae.encode(x)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    return vae.decode(z), mu, logvar


def _vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float):
    """The authors' VAE loss: mean squared error (mean over elements) + beta * KL, KL summed over the batch
    and latent dims (as their code; not averaged)."""
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.mse_loss(recon, x) + beta * kl


class VAAL(Strategy):
    """Variational adversarial active learning (Sinha, Ebrahimi, Darrell, ICCV 2019).

    A beta-VAE and a discriminator on the latent mean are trained from scratch in :meth:`select` on
    labeled (``ctx.labeled``) and unlabeled (``ctx.candidates``) batches; the candidates the discriminator
    finds least likely to be labeled (lowest output) are queried. As the authors' code (sinhasam/vaal):

    - iterations = (|L| + |U|) * ``epochs`` // ``batch_size`` (their num_images * train_epochs // batch,
      train_epochs = 100); per iteration ``vae_steps`` = 2 VAE steps then ``adv_steps`` = 1 discriminator
      step, each on a fresh labeled batch (reshuffled passes, last partial batch dropped) and unlabeled batch
      (partial batch kept); the first discriminator step reuses the last VAE step's batches;
    - VAE loss: [MSE + ``beta`` KL](labeled) + [MSE + ``beta`` KL](unlabeled) + ``adversary_param`` *
      (BCE(D(mu_l), 1) + BCE(D(mu_u), 1)): the VAE tries to make every latent look labeled;
    - discriminator loss: BCE(D(mu_l), 1) + BCE(D(mu_u), 0), with the VAE frozen;
    - Adam with ``lr`` = 5e-4 for both; latent 32; beta 1; adversary_param 1; batch 128; Kaiming init.

    The VAE is their conv VAE sized to the image (see :class:`_ConvVAE`), or an MLP VAE for inputs that are
    not images of at least 4 x 4. Training batches get the data module's training augmentation (their CIFAR
    loader flips). Scoring uses the latent mean with both networks in eval mode (their sampler leaves the
    VAE's batch norm in training mode). The task model is not used: VAAL is task-agnostic. All randomness
    (init, reparameterisation noise, batch order, augmentation) comes from seeds drawn from ``ctx.rng``.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        beta: float = 1.0,
        adversary_param: float = 1.0,
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 5e-4,
        vae_steps: int = 2,
        adv_steps: int = 1,
        width: int | str = "auto",
    ) -> None:
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.adversary_param = float(adversary_param)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.vae_steps = int(vae_steps)
        self.adv_steps = int(adv_steps)
        if width != "auto" and not (isinstance(width, int) and width > 0):
            raise ValueError(f"vaal width={width!r}: a positive int or 'auto'")
        self.width = width

    def vae_width(self, in_shape: Sequence[int]) -> int:
        """Channels of the first conv layer: ``width``, or for ``auto`` the authors' 128 at 32 x 32 scaled by
        the image area (at least 16): 8 x 8 digits -> 16, 28 x 28 -> 98, 32 x 32 and larger -> 128."""
        if self.width != "auto":
            return int(self.width)
        area = int(in_shape[-1]) * int(in_shape[-2]) if len(in_shape) == 3 else 1024
        return int(min(128, max(16, round(128 * area / 1024))))

    def _build_vae(self, in_shape: Sequence[int]) -> nn.Module:
        if len(in_shape) == 3 and min(in_shape[1:]) >= 4:
            return _ConvVAE(in_shape, self.latent_dim, self.vae_width(in_shape))
        return _MLPVAE(in_shape, self.latent_dim)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        seed = int(ctx.rng.integers(0, 2**62))
        batch_gen = torch.Generator().manual_seed(seed ^ 0x5EED)
        aug_gen = torch.Generator(device=ctx.device).manual_seed(seed ^ 0xA06)
        if len(ctx.labeled) == 0 or len(ctx.candidates) == 0:
            raise ValueError("VAAL needs labeled and unlabeled samples")
        cuda = ctx.device.type == "cuda"
        index = ctx.device.index
        if cuda and index is None:
            index = torch.cuda.current_device()
        # init and reparameterisation noise use the global RNG: seed it inside a fork (restored on exit),
        # only on the devices in use
        with torch.random.fork_rng(devices=[index] if cuda else []):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.default_generators[index].manual_seed(seed)
            vae = self._build_vae(ctx.data.in_shape).to(ctx.device)
            disc = latent_discriminator(self.latent_dim).to(ctx.device)
            self._train(ctx, vae, disc, batch_gen, aug_gen)
            logits = self._discriminator_logits(ctx, vae, disc)
        return ctx.candidates[top_k(-logits, ctx.budget, ctx.rng)]

    def _train(
        self,
        ctx: SelectionContext,
        vae: nn.Module,
        disc: nn.Module,
        batch_gen: torch.Generator,
        aug_gen: torch.Generator,
    ) -> None:
        data = ctx.data
        labeled = endless_batches(ctx.labeled, self.batch_size, batch_gen, drop_last=True)
        unlabeled = endless_batches(ctx.candidates, self.batch_size, batch_gen, drop_last=False)

        def draw() -> tuple[torch.Tensor, torch.Tensor]:
            xl = data.get_batch(next(labeled), augment=data.augment, generator=aug_gen)[0]
            xu = data.get_batch(next(unlabeled), augment=data.augment, generator=aug_gen)[0]
            return xl, xu

        opt_vae = torch.optim.Adam(vae.parameters(), lr=self.lr)
        opt_disc = torch.optim.Adam(disc.parameters(), lr=self.lr)
        bce = F.binary_cross_entropy_with_logits
        iterations = max(1, (len(ctx.labeled) + len(ctx.candidates)) * self.epochs // self.batch_size)
        vae.train()
        disc.train()
        for _ in range(iterations):
            # the VAE steps backpropagate through the discriminator but never use its weight gradients
            # (its own step zeroes them first): not computing them gives the VAE the same gradients
            disc.requires_grad_(False)
            for _ in range(self.vae_steps):
                xl, xu = draw()
                recon_l, mu_l, logvar_l = _vae_forward(vae, xl)
                recon_u, mu_u, logvar_u = _vae_forward(vae, xu)
                dl, du = disc(mu_l).squeeze(1), disc(mu_u).squeeze(1)
                adversarial = bce(dl, torch.ones_like(dl)) + bce(du, torch.ones_like(du))
                loss = (
                    _vae_loss(xl, recon_l, mu_l, logvar_l, self.beta)
                    + _vae_loss(xu, recon_u, mu_u, logvar_u, self.beta)
                    + self.adversary_param * adversarial
                )
                opt_vae.zero_grad(set_to_none=True)
                loss.backward()
                opt_vae.step()
            disc.requires_grad_(True)
            for step in range(self.adv_steps):
                if step > 0 or self.vae_steps == 0:
                    xl, xu = draw()
                with torch.no_grad():
                    mu_l, mu_u = vae.encode(xl)[0], vae.encode(xu)[0]
                dl, du = disc(mu_l).squeeze(1), disc(mu_u).squeeze(1)
                loss = bce(dl, torch.ones_like(dl)) + bce(du, torch.zeros_like(du))
                opt_disc.zero_grad(set_to_none=True)
                loss.backward()
                opt_disc.step()

    @torch.no_grad()
    def _discriminator_logits(self, ctx: SelectionContext, vae: nn.Module, disc: nn.Module) -> torch.Tensor:
        """Discriminator logits [N] of the candidates' latent means (low = looks unlabeled)."""
        vae.eval()
        disc.eval()
        out = [
            disc(vae.encode(x)[0]).squeeze(1).float().cpu()
            for x, _, _ in ctx.data.eval_batches(ctx.candidates)
        ]
        return torch.cat(out) if out else torch.zeros(0)


# ---- CAL ---------------------------------------------------------------------------------------------------
class CAL(ScoreStrategy):
    """Contrastive active learning (Margatina et al., EMNLP 2021): query candidates whose predictions diverge
    most from those of their ``k`` nearest labeled neighbours (mean KL(p_neighbour || p_candidate), see
    :func:`al_bench.ops.cal.cal_scores`), in the trained model's penultimate feature space, L2-normalised as
    the authors' code does (``normalize``)."""

    def __init__(self, k: int = 10, normalize: bool = True) -> None:
        self.k = int(k)
        self.normalize = bool(normalize)

    def score(self, ctx: SelectionContext) -> torch.Tensor:
        return cal_scores(
            ctx.features(),
            ctx.probs(),
            ctx.labeled_features(),
            ctx.labeled_logits().softmax(-1),
            self.k,
            self.normalize,
        )


# ---- diverse mini-batch ------------------------------------------------------------------------------------
class DiverseMiniBatch(Strategy):
    """Diverse mini-batch active learning (Zhdanov 2019): pre-filter the ``beta`` * budget candidates of
    highest margin informativeness 1 - (p_(1) - p_(2)), weighted k-means of their penultimate features
    (weights = informativeness) into budget clusters, and query the candidate nearest each centre
    (:func:`al_bench.ops.clustering.diverse_minibatch_select`)."""

    def __init__(self, beta: int = 10) -> None:
        self.beta = int(beta)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        informativeness = 1.0 + margin(ctx.probs())  # margin() is -(p1 - p2)
        pos = diverse_minibatch_select(
            ctx.features(), informativeness.clamp_min(0.0), ctx.budget, ctx.torch_generator(), self.beta
        )
        return ctx.candidates[pos.cpu().numpy()]


# ---- TypiClust ---------------------------------------------------------------------------------------------
class TypiClust(Strategy):
    """TypiClust (Hacohen, Dekel, Weinshall, ICML 2022): cluster labeled + candidates into min(|L| + budget,
    ``max_clusters``) clusters and query the most typical point of the largest clusters that hold the fewest
    labeled points (:func:`al_bench.ops.clustering.typiclust_select`, ``k_neighbors`` for typicality,
    clusters of size <= ``min_cluster_size`` skipped, as the authors' code).

    The authors cluster self-supervised (SimCLR / DINO) embeddings: ``embedding: ssl`` (an encoder of
    ``python -m al_bench.pretrain``); ``pretrained`` clusters a frozen pretrained backbone's features and
    ``model`` the trained model's penultimate features (see :mod:`al_bench.embeddings`); L2-normalised as
    their feature loader does (``normalize``).
    """

    def __init__(
        self,
        k_neighbors: int = 20,
        max_clusters: int = 500,
        min_cluster_size: int = 5,
        normalize: bool = True,
        embedding: str = "model",
    ) -> None:
        self.k_neighbors = int(k_neighbors)
        self.max_clusters = int(max_clusters)
        self.min_cluster_size = int(min_cluster_size)
        self.normalize = bool(normalize)
        self.embedding = check_embedding(embedding, "typiclust")

    def select(self, ctx: SelectionContext) -> np.ndarray:
        lab = ctx.embedding(self.embedding, ctx.labeled)
        cand = ctx.embedding(self.embedding, ctx.candidates)
        feats = torch.cat([lab, cand]).float()
        if self.normalize:
            feats = F.normalize(feats, dim=1)
        is_labeled = torch.zeros(len(feats), dtype=torch.bool)
        is_labeled[: len(lab)] = True
        pos = typiclust_select(
            feats, is_labeled, ctx.budget, ctx.torch_generator(), self.k_neighbors, self.max_clusters,
            self.min_cluster_size,
        )  # fmt: skip
        return ctx.candidates[pos.cpu().numpy() - len(lab)]


# ---- CEAL --------------------------------------------------------------------------------------------------
class CEAL(Strategy):
    """Cost-effective active learning (Wang et al., IEEE TCSVT 2016) with the entropy criterion.

    Queries the ``budget`` candidates of highest predictive entropy (nats). Among the remaining candidates
    (the paper: the whole unlabeled pool; here ``ctx.candidates``, a subset when ``budget.pool_subset`` is
    set), those with entropy < delta_t = max(``delta0`` - ``decay`` * t, 0) at cycle t (paper: delta0 = 0.005,
    decay dr = 0.00033 per iteration) get their predicted class as a pseudo-label for the next cycle's
    training only (:meth:`pseudo_labels`; they never count as labels). ``max_pseudo`` (None = no cap) keeps
    only that many, lowest entropy first.
    """

    def __init__(self, delta0: float = 0.005, decay: float = 0.00033, max_pseudo: int | None = None) -> None:
        self.delta0 = float(delta0)
        self.decay = float(decay)
        self.max_pseudo = None if max_pseudo is None else int(max_pseudo)
        self._pseudo: tuple[np.ndarray, np.ndarray] | None = None

    def threshold(self, cycle: int) -> float:
        """delta_t for ``cycle``."""
        return max(self.delta0 - self.decay * cycle, 0.0)

    def select(self, ctx: SelectionContext) -> np.ndarray:
        probs = ctx.probs()
        ent = entropy(probs)
        picked = top_k(ent, ctx.budget, ctx.rng)
        rest = np.setdiff1d(np.arange(len(ctx.candidates)), picked)
        ent_rest = ent[torch.as_tensor(rest, dtype=torch.long)].double().numpy()
        confident = rest[ent_rest < self.threshold(ctx.cycle)]
        if self.max_pseudo is not None and len(confident) > self.max_pseudo:
            ent_conf = ent[torch.as_tensor(confident, dtype=torch.long)].double().numpy()
            confident = np.sort(confident[np.argsort(ent_conf, kind="stable")[: self.max_pseudo]])
        labels = probs[torch.as_tensor(confident, dtype=torch.long)].argmax(1).numpy().astype(np.int64)
        self._pseudo = (ctx.candidates[confident].astype(np.int64), labels)
        return ctx.candidates[picked]

    def pseudo_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self._pseudo

    def state_dict(self) -> dict:
        if self._pseudo is None:
            return {}
        return {"pseudo_indices": self._pseudo[0].copy(), "pseudo_labels": self._pseudo[1].copy()}

    def load_state_dict(self, state: dict) -> None:
        if "pseudo_indices" in state:
            self._pseudo = (
                np.asarray(state["pseudo_indices"], dtype=np.int64),
                np.asarray(state["pseudo_labels"], dtype=np.int64),
            )
        else:
            self._pseudo = None
