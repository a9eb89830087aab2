"""Self-supervised pretraining on the training images: ``python -m al_bench.pretrain dataset=... ssl=simclr``.

Writes an ``al_bench-encoder-1`` checkpoint that ``model.weights=<path>`` and the SSL embeddings of
TypiClust / ProbCover / cold start read with :func:`load_encoder` and :func:`encode`.
"""

from al_bench.pretrain import archs  # noqa: F401  (registers the CIFAR-stem ResNets with timm)
from al_bench.pretrain.checkpoint import encode, load_encoder

__all__ = ["encode", "load_encoder"]
