"""Contrastive Active Learning (Margatina et al., EMNLP 2021): disagreement with the labeled neighbourhood."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from al_bench.ops.clustering import squared_distances

#: elements of one [chunk, L] distance block held at once.
_CHUNK_ELEMENTS = 1 << 24


def cal_scores(
    cand_features: torch.Tensor,
    cand_probs: torch.Tensor,
    lab_features: torch.Tensor,
    lab_probs: torch.Tensor,
    k: int = 10,
    normalize: bool = True,
) -> torch.Tensor:
    """CAL score [N]: mean over the ``k`` nearest labeled neighbours of KL(p_neighbour || p_candidate).

    Args:
        cand_features: candidate features [N, D]; cand_probs: their predicted probabilities [N, C].
        lab_features: labeled features [L, D]; lab_probs: the model's predicted probabilities on them [L, C]
            (predictions, not the true labels, as in the paper).
        k: neighbours per candidate (paper and code: 10); clamped to L.
        normalize: L2-normalise features before the Euclidean k-NN search, as the authors' code does
            (``torch.nn.functional.normalize`` before scikit-learn's ``KNeighborsClassifier``).

    Direction: the authors' code evaluates ``KLDivLoss(log_softmax(candidate_logits), neighbour_probs)``
    summed over classes, i.e. sum_c p_nb,c (log p_nb,c - log p_cand,c) = KL(p_neighbour || p_candidate)
    (paper eq. 2), then the mean over neighbours. log p_cand is taken of the probabilities clamped at the
    smallest positive float, so a zero probability gives a large finite score. Higher = query first.
    """
    if len(lab_features) == 0:
        raise ValueError("CAL needs at least one labeled point")
    k = min(int(k), len(lab_features))
    if normalize:
        cand_features = F.normalize(cand_features.float(), dim=1)
        lab_features = F.normalize(lab_features.float(), dim=1)
    lab_probs = lab_probs.float()
    lab_neg_entropy = torch.special.xlogy(lab_probs, lab_probs).sum(1)  # sum_c p log p, [L]
    log_cand = cand_probs.float().clamp_min(torch.finfo(torch.float32).tiny).log()
    step = max(1, _CHUNK_ELEMENTS // len(lab_features))
    out = []
    for s in range(0, len(cand_features), step):
        d2 = squared_distances(cand_features[s : s + step].float(), lab_features.float())
        nb = d2.topk(k, dim=1, largest=False).indices  # [n, k]
        cross = torch.einsum("nkc,nc->nk", lab_probs[nb], log_cand[s : s + step])  # sum_c p_nb log p_cand
        out.append((lab_neg_entropy[nb] - cross).mean(1))
    return torch.cat(out) if out else cand_features.new_zeros(0)
