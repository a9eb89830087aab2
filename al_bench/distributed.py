"""Multi-process (DDP) helpers: which rank this is, and broadcasting a selection from rank 0."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Global rank: from the process group when it exists, else from Lightning's launcher environment."""
    if initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def is_main() -> bool:
    """True in the process that writes results (rank 0, or the only process)."""
    return rank() == 0


def broadcast_indices(indices: np.ndarray) -> np.ndarray:
    """Rank 0's ``indices`` on every rank (identity without a process group), so all ranks label the same."""
    if not initialized() or dist.get_world_size() == 1:
        return indices
    box = [indices if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return np.asarray(box[0], dtype=np.int64)


def shard(indices: torch.Tensor | np.ndarray, n_ranks: int, this_rank: int) -> torch.Tensor | np.ndarray:
    """This rank's share of an epoch's (shuffled) indices, padded by wrapping around so that every rank gets
    the same count (as torch's DistributedSampler): ranks then run the same number of steps."""
    if n_ranks == 1:
        return indices
    per_rank = -(-len(indices) // n_ranks)
    total = per_rank * n_ranks
    if total > len(indices):
        if isinstance(indices, torch.Tensor):
            indices = indices.repeat(-(-total // max(len(indices), 1)))[:total]
        else:
            indices = np.resize(indices, total)
    return indices[this_rank:total:n_ranks]
