"""CAM++ trains from scratch with the episodic trainer (``--encoder campplus``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_spkid.models import feature_encoder
from keras_spkid.training.protonet import ProtonetConfig, train_protonet


@pytest.mark.slow  # builds and traces the 6.9 M-parameter CAM++
def test_protonet_trains_campplus(tiny_corpus, cache_dir, tmp_path):
    config = ProtonetConfig(
        num_way=3, num_support=2, num_query=2, batch_size=1, num_train_iterations=4,
        test_interval=4, print_interval=1, val_tasks=4, test_tasks=4,
        log_dir=str(tmp_path / "run"), encoder="campplus", n_mels=64,
        support_frames=100, query_frames=100, learning_rate=1e-3,
        train_corpora=(str(tiny_corpus),), val_corpora=(str(tiny_corpus),),
        test_corpora=(str(tiny_corpus),), cache=str(cache_dir), seed=1,
    )  # fmt: skip
    summary = train_protonet(config, verbose=False)
    assert summary["step"] == 4
    assert all(np.isfinite(entry["loss"]) for entry in summary["history"])
    saved = keras.saving.load_model(tmp_path / "run" / "best" / "model.keras")
    assert saved(np.zeros((1, 16000), "float32")).shape == (1, 192)  # raw audio, front end in
    encoder = feature_encoder(saved)
    assert encoder.get_layer("xvector.block3.tdnnd16").linear_local.dilation_rate == (2,)
    assert encoder(np.zeros((1, 100, 64), "float32")).shape == (1, 192)
