"""Posterior sources: T consistent functions of a trained model, scored as probabilities [N, T, C]."""

from al_bench.posteriors.mc_dropout import MCDropoutPosterior, dropout_layers

__all__ = ["MCDropoutPosterior", "dropout_layers"]
