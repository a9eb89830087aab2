"""Split-head ensembles: T heads on one trunk trained jointly; function t is head t on the shared features."""

from __future__ import annotations

import numpy as np
import torch

from al_bench.posteriors.split_head import SplitHeadSource
from tests.posteriors.posterior_cases import LABELED, context


def test_heads_share_the_trunk_exactly_and_are_trained_jointly(tmp_path):
    calls: list[dict] = []
    ctx = context(tmp_path, calls=calls)
    posterior = SplitHeadSource().draw(ctx, 4)
    (call,) = calls
    net, extra = call["net"], call["aux"]
    assert posterior.net is net and posterior.heads[0] is net.head and len(extra.heads) == 3
    indices = ctx.candidates[:10]
    probs = posterior.probs(ctx.data, indices)
    x = ctx.data.dataset.x_train[torch.as_tensor(indices)]
    net.eval()
    with torch.no_grad():
        features = net.features(x)  # one trunk for every head
        for t, head in enumerate(posterior.heads):
            torch.testing.assert_close(probs[:, t], head(features).softmax(-1))
    for k, before in call["aux_before"].items():  # the extra heads learned
        assert not torch.equal(before, extra.state_dict()[k])
    heads = [h.weight for h in posterior.heads]
    assert all(not torch.equal(heads[i], heads[j]) for i in range(4) for j in range(i + 1, 4))
    alone = ctx.fit_model(call["seed"])  # same seed, one head: the extra heads' losses moved the trunk
    assert not torch.equal(alone.first[1].weight, net.first[1].weight)
    assert np.array_equal(LABELED, ctx.labeled)
