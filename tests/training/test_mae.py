"""MAE pre-training on real speech: masks, falling loss, and protonet initialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.errors import SpkidError
from keras_spkid.models import feature_encoder
from keras_spkid.training.mae import MAEConfig, make_mask, train_mae
from keras_spkid.training.protonet import ProtonetConfig, train_protonet


@pytest.mark.parametrize(
    "kind,ratio,units", [("strips", 0.75, 19), ("strips", 0.55, 19), ("boxes", 0.75, 6 * 4)]
)
def test_masks_hide_whole_units_in_the_right_number(kind, ratio, units):
    mask = make_mask(192, 64, 8, kind, ratio, tf.constant([1, 2], tf.int64)).numpy()
    assert mask.shape == (8, 192, 64) and set(np.unique(mask)) <= {0.0, 1.0}
    if kind == "strips":
        per_strip = mask[:, :190].reshape(8, 19, 10, 64)
        assert (per_strip.min(axis=(2, 3)) == per_strip.max(axis=(2, 3))).all()
        hidden = per_strip[:, :, 0, 0].sum(axis=1)
    else:
        boxes = mask[:, :180, :].reshape(8, 6, 30, 4, 16)
        assert (boxes.min(axis=(2, 4)) == boxes.max(axis=(2, 4))).all()
        hidden = boxes[:, :, 0, :, 0].sum(axis=(1, 2))
    assert (hidden == round(ratio * units)).all()
    assert not np.array_equal(mask[0], mask[1])


def _config(tiny_corpus, cache_dir, log_dir, **overrides):
    base = dict(
        mask="boxes",
        mask_ratio=0.5,
        batch_size=8,
        num_train_iterations=25,
        test_interval=25,
        print_interval=5,
        val_batches=2,
        log_dir=str(log_dir),
        crop_frames=64,
        train_corpora=(str(tiny_corpus),),
        cache=str(cache_dir),
        learning_rate=5e-3,
        seed=2,
    )
    base.update(overrides)
    return MAEConfig(**base)


@pytest.mark.slow
def test_mae_loss_falls_and_initialises_a_protonet(tiny_corpus, cache_dir, tmp_path):
    summary = train_mae(_config(tiny_corpus, cache_dir, tmp_path / "mae"), verbose=False)
    losses = [entry["loss"] for entry in summary["history"]]
    assert len(losses) == 5 and losses[-1] < losses[0]
    encoder_path = tmp_path / "mae" / "best" / "model.keras"
    pretrained = feature_encoder(keras.saving.load_model(encoder_path))
    config = ProtonetConfig(
        num_way=3,
        num_support=2,
        num_query=2,
        batch_size=1,
        num_train_iterations=1,
        test_interval=1,
        val_tasks=2,
        support_frames=64,
        query_frames=64,
        init_from=str(encoder_path),
        train_corpora=(str(tiny_corpus),),
        val_corpora=(str(tiny_corpus),),
        cache=str(cache_dir),
        log_dir=str(tmp_path / "proto"),
        learning_rate=1e-9,
    )
    train_protonet(config, verbose=False)
    initialised = feature_encoder(
        keras.saving.load_model(tmp_path / "proto" / "final" / "model.keras")
    )
    np.testing.assert_allclose(
        initialised.get_layer("block1_conv").get_weights()[0],
        pretrained.get_layer("block1_conv").get_weights()[0],
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(mask_ratio=1.0), r"--mask_ratio must be in \(0, 1\)"),
        (dict(mask_ratio=0.0), r"--mask_ratio must be in \(0, 1\)"),
        (dict(mask="none"), "--mask must be 'strips' or 'boxes'"),
        (dict(crop_frames=100), "multiple of 64"),
        (dict(encoder="sacnn"), "supports conv6"),
    ],
)
def test_impossible_settings(tiny_corpus, cache_dir, tmp_path, overrides, message):
    with pytest.raises(SpkidError, match=message):
        train_mae(_config(tiny_corpus, cache_dir, tmp_path / "x", **overrides), verbose=False)
    assert not (tmp_path / "x").exists()
