"""CAM++ trains from scratch with the episodic trainer (``--encoder campplus``)."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from keras_spkid.models import feature_encoder, registry
from keras_spkid.models.campplus import CAMDenseLayer, build_campplus
from keras_spkid.training.protonet import ProtonetConfig, train_protonet

# The preset's three D-TDNN blocks (kernel 3; dilation 1, 2, 2) at 2 layers each instead of
# 12, 24 and 16: tracing the training step of all 52 layers took ~3 minutes on 2 cores.
# The full-size encoder is built and checked against the preset's weights in
# tests/training/test_protonet.py::test_the_campplus_preset_initialises_every_layer_...
SHORT_BLOCKS = ((2, 3, 1), (2, 3, 2), (2, 3, 2))


@pytest.mark.slow  # builds and traces CAM++ (about 40 s on 2 cores)
def test_protonet_trains_campplus(tiny_corpus, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(
        registry.ENCODERS, "campplus", functools.partial(build_campplus, blocks=SHORT_BLOCKS)
    )
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
    layers = [layer for layer in encoder.layers if isinstance(layer, CAMDenseLayer)]
    assert len(layers) == 6  # the encoder the run built, with the blocks given above
    assert encoder.get_layer("xvector.block3.tdnnd2").linear_local.dilation_rate == (2,)
    assert encoder(np.zeros((1, 100, 64), "float32")).shape == (1, 192)
