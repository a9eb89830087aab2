"""Learned, hybrid and influence strategies run one AL cycle through the loop on CIFAR-shaped data (synthetic
3x32x32 uint8 images, ResNet-18 with dropout): LL4AL on four residual stages, VAAL's conv VAE at 32x32."""

from __future__ import annotations

import pytest

from al_bench.loop import run

CIFAR_SHAPED = [
    "dataset=synthetic", "dataset.shape=[3,32,32]", "dataset.as_uint8=true", "dataset.n_train=60",
    "dataset.n_test=20", "dataset.num_classes=4", "dataset.val_size=8", "model=resnet18", "model.dropout=0.2",
    "budget.init_size=8", "budget.query_size=4", "budget.cycles=1", "trainer.max_epochs=1",
    "trainer.batch_size=8", "verbose=false",
]  # fmt: skip
EXTRA = {
    "vaal": ["strategy.epochs=1", "strategy.width=16"],
    "isal": ["strategy.steps=3", "strategy.repeats=1"],
    "ralif": ["strategy.steps=3", "strategy.repeats=1", "strategy.tau=2"],
    "batchbald": ["strategy.num_joint_samples=200"],
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy", ["ll4al", "vaal", "cal", "diverse_minibatch", "typiclust", "ceal", "badge", "coreset",
                 "label_dispersion", "bald", "batchbald", "isal", "ralif", "epig", "stochastic", "probcover",
                 "bait"],
)  # fmt: skip
def test_one_cycle_on_cifar_shaped_data(make_cfg, strategy):
    cfg = make_cfg(*CIFAR_SHAPED, f"strategy={strategy}", *EXTRA.get(strategy, []), tiny=False)
    result = run(cfg)
    assert result.curve["n_labeled"].tolist() == [8, 12]
