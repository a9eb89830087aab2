"""Datasets: each loader returns an :class:`ArrayDataset`; the :class:`ALDataModule` serves it by index."""

from al_bench.data.base import ALDataModule, ArrayDataset, IndexBatches, stratified_subset

__all__ = ["ALDataModule", "ArrayDataset", "IndexBatches", "stratified_subset"]
