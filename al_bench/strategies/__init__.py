"""Strategies: one class per strategy, one yaml per strategy in ``configs/strategy/``."""

from al_bench.strategies.base import ScoreStrategy, SelectionContext, Strategy, top_k

__all__ = ["ScoreStrategy", "SelectionContext", "Strategy", "top_k"]
