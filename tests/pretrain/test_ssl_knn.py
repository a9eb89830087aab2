"""(slow) A few CPU epochs of SimCLR on digits give features whose k-NN accuracy beats the same architecture
at its random initialisation. Labels are read only here, to score the features, never by the pretraining."""

from __future__ import annotations

import pytest

from al_bench.pretrain import encode, load_encoder
from al_bench.pretrain.runner import load_dataset, run
from al_bench.pretrain.simclr import build_simclr
from tests.pretrain.ssl_cases import compose_pretrain, knn_accuracy


@pytest.mark.slow
def test_simclr_features_beat_random_init_on_digits(tmp_path):
    cfg = compose_pretrain(tmp_path, "ssl.epochs=10", "verbose=false", tiny=False)
    result = run(cfg)
    data = load_dataset(cfg)
    model, meta = load_encoder(result.encoder_path)
    ssl = knn_accuracy(
        encode(model, meta, data.x_train), data.y_train, encode(model, meta, data.x_test), data.y_test
    )
    init = build_simclr(meta["arch"], meta["in_chans"], None, 8, False, seed=int(cfg.seed)).encoder
    rand = knn_accuracy(
        encode(init, meta, data.x_train), data.y_train, encode(init, meta, data.x_test), data.y_test
    )
    print(f"digits k-NN (k=20, cosine): SimCLR {ssl:.3f}, random init {rand:.3f}, losses {result.losses}")
    assert result.losses[-1] < result.losses[0]
    assert ssl > rand + 0.05
