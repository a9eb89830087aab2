"""Models: every one is an :class:`~al_bench.models.base.ALNet`, built from ``configs/model/*.yaml``."""

from al_bench.models.base import ALNet, enable_dropout_only, has_dropout

__all__ = ["ALNet", "enable_dropout_only", "has_dropout"]
