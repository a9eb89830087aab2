"""Representations: timm backbones, their weights, and frozen features cached on disk by content.

- :func:`extract_features` (cfg or :class:`BackboneSpec`, dataset) -> (train [N, D], test [M, D]), cached;
- :func:`load_backbone_weights` (timm model, weights file): raw, al_bench-encoder or EfficientNet-Lite files;
- :func:`resolve_backbone` / :func:`create_backbone` build the network and its input transform.
"""

from al_bench.representations.backbones import (
    Backbone,
    BackboneInput,
    BackboneSpec,
    ResolvedBackbone,
    create_backbone,
    resolve_backbone,
)
from al_bench.representations.feature_cache import extract_features, features_dataset
from al_bench.representations.weights import load_backbone_weights, read_weights

__all__ = [
    "Backbone",
    "BackboneInput",
    "BackboneSpec",
    "ResolvedBackbone",
    "create_backbone",
    "extract_features",
    "features_dataset",
    "load_backbone_weights",
    "read_weights",
    "resolve_backbone",
]
