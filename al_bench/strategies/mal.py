"""Minimax active learning (MAL; Ebrahimi, Gan, Chen, Biamby, Salahi, Laielli, Zhu, Darrell; 2012.10467).

An encoder F maps images to a latent z; a cosine classifier C (class prototypes, temperature T) reads the
L2-normalised z; a discriminator D (VAAL's) tells labeled from unlabeled latents (it reads the same
normalised z). All three are trained from scratch inside :meth:`MAL.select` on labeled (``ctx.labeled``)
and unlabeled (``ctx.candidates``) batches, VAAL-style (no authors' code is public; the structure follows
VAAL's code, the minimax term MME's):

- F and C, one Adam step per iteration on CE(C(z_l), y_l) + ``entropy_weight`` * (-H(C(GRL(z_u))))
  + ``adversary_param`` * [BCE(D(z_l), 1) + BCE(D(z_u), 1)]: through the gradient reversal layer the
  classifier maximises the unlabeled entropy H and the encoder minimises it (MME's adentropy, here summed
  with the supervised loss in one step where MME takes two), and the encoder tries to make every latent
  look labeled (VAAL's adversarial term);
- D, one Adam step on BCE(D(z_l), 1) + BCE(D(z_u), 0) with the same batch's latents detached.

Selection (the paper: "the highest entropy samples from the classifier that the discriminator predicts as
unlabeled"; its exact combination is not public, this is our reading): the ceil(``shortlist_factor`` *
budget) candidates with the highest D-probability of being unlabeled, then the ``budget`` of them with the
highest classifier entropy (factor 1 = VAAL's rule on MAL's latent; factor >= N / budget = entropy only).
Networks score in eval mode. The task model is not used. All randomness (init, batch order, augmentation)
comes from seeds drawn from ``ctx.rng``; initialisation uses the global RNG inside ``torch.random.fork_rng``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from al_bench.errors import ALBenchError
from al_bench.ops.minimax_entropy import (
    cosine_logits,
    entropy_from_logits,
    grad_reverse,
    minimax_entropy_loss,
)
from al_bench.strategies.adversarial import endless_batches, kaiming_init, latent_discriminator
from al_bench.strategies.base import SelectionContext, Strategy, top_k


class _ConvEncoder(nn.Module):
    """VAAL's encoder for an S x S input (S the next power of two >= max(H, W), >= 4; smaller or non-square
    images are zero-padded bottom/right): log2(S) - 1 blocks Conv(4, stride 2, pad 1, no bias) -> BN -> ReLU
    with ``width`` * 2^i channels (capped at 1024) down to 2 x 2, then Linear -> latent [B, latent_dim]."""

    def __init__(self, in_shape: Sequence[int], latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = (int(v) for v in in_shape)
        self.h, self.w = h, w
        self.side = 1 << max(2, math.ceil(math.log2(max(h, w))))
        chans = [min(width * 2**i, 1024) for i in range(int(math.log2(self.side)) - 1)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *chans[:-1]], chans):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(chans[-1] * 4, latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.pad(x, (0, self.side - self.w, 0, self.side - self.h)))


def _mlp_encoder(in_shape: Sequence[int], latent_dim: int) -> nn.Sequential:
    """For inputs that are not images of at least 4 x 4: flatten -> 512 -> ReLU -> 256 -> ReLU -> latent."""
    d = math.prod(int(v) for v in in_shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(d, 512),
        nn.ReLU(True),
        nn.Linear(512, 256),
        nn.ReLU(True),
        nn.Linear(256, latent_dim),
    )


class MAL(Strategy):
    """Minimax active learning: see the module docstring. Defaults are CPU-sized (see the yaml for the
    paper's and its ancestors' values)."""

    def __init__(
        self,
        latent_dim: int = 32,
        temperature: float = 0.05,
        entropy_weight: float = 0.1,
        adversary_param: float = 1.0,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 5e-4,
        width: int | str = "auto",
        shortlist_factor: float = 2.0,
    ) -> None:
        if width != "auto" and not (isinstance(width, int) and width > 0):
            raise ALBenchError(f"mal: width={width!r} must be a positive int or 'auto'")
        if float(shortlist_factor) < 1:
            raise ALBenchError(f"mal: shortlist_factor must be >= 1, got {shortlist_factor}")
        if float(temperature) <= 0:
            raise ALBenchError(f"mal: temperature must be > 0, got {temperature}")
        self.latent_dim = int(latent_dim)
        self.temperature = float(temperature)
        self.entropy_weight = float(entropy_weight)
        self.adversary_param = float(adversary_param)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.width = width
        self.shortlist_factor = float(shortlist_factor)

    def encoder_width(self, in_shape: Sequence[int]) -> int:
        """VAAL's rule: ``width``, or for ``auto`` 128 at 32 x 32 scaled by the image area, in [16, 128]."""
        if self.width != "auto":
            return int(self.width)
        area = int(in_shape[-1]) * int(in_shape[-2]) if len(in_shape) == 3 else 1024
        return int(min(128, max(16, round(128 * area / 1024))))

    def build(self, in_shape: Sequence[int], num_classes: int) -> tuple[nn.Module, nn.Parameter, nn.Module]:
        """(encoder, prototypes [C, latent], discriminator), freshly initialised from the global RNG."""
        if len(in_shape) == 3 and min(in_shape[1:]) >= 4:
            encoder: nn.Module = _ConvEncoder(in_shape, self.latent_dim, self.encoder_width(in_shape))
        else:
            encoder = _mlp_encoder(in_shape, self.latent_dim)
        disc = latent_discriminator(self.latent_dim)
        kaiming_init(encoder, disc)
        prototypes = nn.Parameter(F.normalize(torch.randn(num_classes, self.latent_dim), dim=1))
        return encoder, prototypes, disc

    def select(self, ctx: SelectionContext) -> np.ndarray:
        if len(ctx.labeled) == 0 or len(ctx.candidates) == 0:
            raise ALBenchError("mal needs labeled and unlabeled samples: set budget.init_size > 0")
        seed = int(ctx.rng.integers(0, 2**62))
        batch_gen = torch.Generator().manual_seed(seed ^ 0x5EED)
        aug_gen = torch.Generator(device=ctx.device).manual_seed(seed ^ 0xA06)
        cuda = ctx.device.type == "cuda"
        index = ctx.device.index
        if cuda and index is None:
            index = torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index] if cuda else []):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.default_generators[index].manual_seed(seed)
            encoder, prototypes, disc = self.build(ctx.data.in_shape, ctx.data.num_classes)
            encoder, disc = encoder.to(ctx.device), disc.to(ctx.device)
            prototypes = nn.Parameter(prototypes.detach().to(ctx.device))
            self._train(ctx, encoder, prototypes, disc, batch_gen, aug_gen)
            p_unlabeled, entropy = self._candidate_scores(ctx, encoder, prototypes, disc)
        n_short = min(len(ctx.candidates), math.ceil(self.shortlist_factor * ctx.budget))
        shortlist = top_k(p_unlabeled, n_short, ctx.rng)
        return ctx.candidates[shortlist[top_k(entropy[torch.as_tensor(shortlist)], ctx.budget, ctx.rng)]]

    def step_losses(
        self,
        encoder: nn.Module,
        prototypes: torch.Tensor,
        disc: nn.Module,
        xl: torch.Tensor,
        yl: torch.Tensor,
        xu: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss of F and C, loss of D, z_l, z_u) for one labeled batch (xl, yl) and unlabeled batch xu."""
        zl, zu = encoder(xl), encoder(xu)
        ce = F.cross_entropy(cosine_logits(zl, prototypes, self.temperature), yl)
        minimax = minimax_entropy_loss(cosine_logits(grad_reverse(zu), prototypes, self.temperature))
        ul, uu = F.normalize(zl, dim=1), F.normalize(zu, dim=1)
        bce = F.binary_cross_entropy_with_logits
        dl, du = disc(ul).squeeze(1), disc(uu).squeeze(1)
        fool = bce(dl, torch.ones_like(dl)) + bce(du, torch.ones_like(du))
        task = ce + self.entropy_weight * minimax + self.adversary_param * fool
        dl, du = disc(ul.detach()).squeeze(1), disc(uu.detach()).squeeze(1)
        adversary = bce(dl, torch.ones_like(dl)) + bce(du, torch.zeros_like(du))
        return task, adversary, zl, zu

    def _train(
        self,
        ctx: SelectionContext,
        encoder: nn.Module,
        prototypes: nn.Parameter,
        disc: nn.Module,
        batch_gen: torch.Generator,
        aug_gen: torch.Generator,
    ) -> None:
        data = ctx.data
        labeled = endless_batches(ctx.labeled, self.batch_size, batch_gen, drop_last=True)
        unlabeled = endless_batches(ctx.candidates, self.batch_size, batch_gen, drop_last=False)
        opt_task = torch.optim.Adam([*encoder.parameters(), prototypes], lr=self.lr)
        opt_disc = torch.optim.Adam(disc.parameters(), lr=self.lr)
        iterations = max(1, (len(ctx.labeled) + len(ctx.candidates)) * self.epochs // self.batch_size)
        encoder.train()
        disc.train()
        for _ in range(iterations):
            xl, yl, _ = data.get_batch(next(labeled), augment=data.augment, generator=aug_gen)
            xu = data.get_batch(next(unlabeled), augment=data.augment, generator=aug_gen)[0]
            task, adversary, _, _ = self.step_losses(encoder, prototypes, disc, xl, yl, xu)
            opt_task.zero_grad(set_to_none=True)
            task.backward(inputs=[*encoder.parameters(), prototypes])
            opt_task.step()
            opt_disc.zero_grad(set_to_none=True)
            adversary.backward(inputs=list(disc.parameters()))
            opt_disc.step()

    @torch.no_grad()
    def _candidate_scores(
        self, ctx: SelectionContext, encoder: nn.Module, prototypes: torch.Tensor, disc: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(D's probability that each candidate is unlabeled [N], the classifier's entropy [N]) on CPU."""
        encoder.eval()
        disc.eval()
        p_unlabeled, entropy = [], []
        for x, _, _ in ctx.data.eval_batches(ctx.candidates):
            z = encoder(x)
            p_unlabeled.append(torch.sigmoid(-disc(F.normalize(z, dim=1)).squeeze(1)).float().cpu())
            entropy.append(entropy_from_logits(cosine_logits(z, prototypes, self.temperature)).float().cpu())
        return torch.cat(p_unlabeled), torch.cat(entropy)
