"""Encoders: shapes for variable length, saving, the raw-audio wrapper, mixed precision,
parameter counts against the reference systems, and the registry."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_spkid.audio.frontend import LogMel, SpecAugment
from keras_spkid.models import (
    REFERENCE_SACNN_WIDTHS,
    available_encoders,
    build_conv6,
    build_encoder,
    build_resnet34,
    build_sacnn,
    with_frontend,
)

# Tiny widths keep every test fast on 2 CPU cores; the structure is the full one.
TINY = {
    "conv6": dict(channels=(4, 4, 4, 4, 4, 6)),
    "resnet34": dict(base_width=4, pooling_units=8, embedding_dim=16),
    "sacnn": dict(widths=(4, 8, 8, 8), attention_units=8, embedding_dim=16),
    "resnet18_sa": dict(base_width=4, attention_units=8, embedding_dim=16),
    "campplus": dict(
        embedding_dim=16,
        growth_rate=4,
        init_channels=8,
        head_channels=4,
        blocks=((1, 3, 1), (1, 3, 2)),
    ),
}
MELS = {
    "conv6": (64,),
    "resnet34": (40, 64),
    "sacnn": (40, 64),
    "resnet18_sa": (40, 64),
    "campplus": (64,),
}
CASES = [(name, n_mels) for name in TINY for n_mels in MELS[name]]
RNG = np.random.default_rng(0)


def expected_dim(name, n_mels):
    return 6 * (n_mels // 64) if name == "conv6" else 16


def tiny(name, n_mels=64, **extra):
    return build_encoder(name, n_mels=n_mels, **{**TINY[name], **extra})


def perturb(model):
    """Move every weight (BN statistics included) off its initial value."""
    for variable in model.weights:
        noise = RNG.uniform(0.0, 0.2, size=variable.shape).astype(variable.dtype)
        variable.assign(variable.numpy() + noise)


def features(batch, frames, n_mels):
    return RNG.normal(size=(batch, frames, n_mels)).astype("float32")


def test_registry_lists_the_encoders():
    assert available_encoders() == ["campplus", "conv6", "resnet18_sa", "resnet34", "sacnn"]
    with pytest.raises(ValueError, match="campplus, conv6, resnet18_sa, resnet34, sacnn") as info:
        build_encoder("resnet50")
    assert "resnet50" in str(info.value)


@pytest.mark.parametrize("name,n_mels", CASES)
def test_output_shape_for_variable_lengths(name, n_mels):
    model = tiny(name, n_mels)
    assert tuple(model.input.shape) == (None, None, n_mels)
    dim = expected_dim(name, n_mels)
    assert tuple(model.output.shape) == (None, dim)
    for frames in (100, 150, 301):
        out = model(features(3, frames, n_mels), training=False).numpy()
        assert out.shape == (3, dim)
        assert out.dtype == np.float32 and np.isfinite(out).all()
    # Different lengths of the same audio give different (but same-sized) embeddings.
    x = features(1, 301, n_mels)
    assert not np.allclose(model(x[:, :150]).numpy(), model(x).numpy(), atol=1e-4)


@pytest.mark.parametrize("name", list(TINY))
def test_embedding_of_an_example_does_not_depend_on_its_batch(name):
    model = tiny(name)
    x = features(3, 120, 64)
    alone = model(x[:1], training=False).numpy()
    together = model(x, training=False).numpy()
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(TINY))
def test_saved_encoder_gives_the_same_embeddings(tmp_path, name):
    model = tiny(name)
    perturb(model)
    x = features(2, 150, 64)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for frames in (100, 150):
        np.testing.assert_allclose(
            loaded(x[:, :frames]).numpy(), model(x[:, :frames]).numpy(), atol=1e-5
        )


@pytest.mark.parametrize("name", list(TINY))
def test_with_frontend_takes_raw_audio_and_round_trips(tmp_path, name):
    encoder = tiny(name)
    perturb(encoder)
    model = with_frontend(encoder)
    audio = RNG.normal(scale=0.1, size=(2, 16000)).astype("float32")
    out = model(audio).numpy()
    assert out.shape == (2, expected_dim(name, 64)) and np.isfinite(out).all()
    # The same as running the default LogMel by hand, then the encoder.
    np.testing.assert_allclose(out, encoder(LogMel(n_mels=64)(audio)).numpy(), atol=1e-5)
    path = tmp_path / f"{name}_waveform.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(audio).numpy(), out, atol=1e-5)
    shorter = audio[:, :12000]  # 76 frames; another length through the saved graph
    np.testing.assert_allclose(loaded(shorter).numpy(), model(shorter).numpy(), atol=1e-5)


def test_with_frontend_shares_weights_and_checks_mels():
    encoder = tiny("sacnn", 40)
    model = with_frontend(encoder, LogMel(n_mels=40), augment=SpecAugment(seed=1))
    assert {id(v) for v in encoder.weights} <= {id(v) for v in model.weights}
    audio = RNG.normal(scale=0.1, size=(2, 16000)).astype("float32")
    np.testing.assert_allclose(
        model(audio).numpy(), model(audio).numpy()
    )  # no masking at inference
    with pytest.raises(ValueError, match="64 mel bands but encoder 'sacnn' expects 40"):
        with_frontend(encoder, LogMel(n_mels=64))


@pytest.mark.parametrize("name", list(TINY))
def test_mixed_float16_builds_and_returns_float32(mixed_precision, name):
    model = tiny(name)
    assert any(layer.compute_dtype == "float16" for layer in model.layers)
    out = model(features(2, 150, 64)).numpy()
    assert out.dtype == np.float32 and np.isfinite(out).all()
    raw = with_frontend(model)(RNG.normal(scale=0.1, size=(2, 16000)).astype("float32"))
    assert raw.dtype == "float32" and np.isfinite(raw.numpy()).all()


def test_mixed_precision_policy_is_restored():
    assert keras.mixed_precision.global_policy().name == "float32"


def test_conv6_rejects_too_few_mels():
    with pytest.raises(ValueError, match=r"conv6 needs n_mels >= 64.*n_mels=40"):
        build_encoder("conv6", n_mels=40)
    with pytest.raises(ValueError, match="n_mels >= 8"):
        build_conv6(4, channels=(2, 2, 2))
    with pytest.raises(ValueError, match="fixed by its architecture"):
        build_conv6(64, embedding_dim=256)
    assert build_conv6(128, embedding_dim=128).output.shape[-1] == 128


def trainable(model, layer_type=None):
    weights = model.trainable_weights
    if layer_type is not None:
        weights = [
            w
            for layer in model.layers
            if isinstance(layer, layer_type)
            for w in layer.trainable_weights
        ]
    return sum(int(np.prod(w.shape)) for w in weights)


def test_conv6_parameter_count_matches_cs330():
    model = build_conv6(256)
    assert trainable(model) == 134_688
    assert trainable(model, keras.layers.Conv2D) == 134_080
    assert trainable(model, keras.layers.BatchNormalization) == 608
    assert model.output.shape[-1] == 256  # 64 channels x 4 frequency bins
    # The count does not depend on the number of mel bands.
    assert trainable(build_conv6(64)) == 134_688


def test_resnet34_presets_match_reference_parameter_counts():
    # voxceleb_trainer ResNetSE34L, nOut 512, SAP: 1,437,078 (issue #133's log).
    assert trainable(build_resnet34(40, preset="se34l", embedding_dim=512)) == 1_437_078
    # meta-SR ResNet-34 at width 32, TAP, BN, bias-free FC 256: 5,390,688 (computed).
    assert trainable(build_resnet34(40, preset="metasr")) == 5_390_688
    with pytest.raises(ValueError, match="metasr, se34l"):
        build_resnet34(preset="resnet")


def test_sacnn_at_reference_widths_matches_inzpeech_summary():
    model = build_sacnn(40, widths=REFERENCE_SACNN_WIDTHS)
    classifier = 256 * 1251 + 1251  # the reference's Dense(1251, softmax) head, not ours
    assert model.count_params() + classifier == 5_797_283
    assert trainable(model) + classifier == 5_795_363
    assert model.get_layer("self_attention").count_params() == 394_240


@pytest.mark.parametrize("pooling,dim", [("tap", 16), ("asp", 16), ("self_attention", 16)])
def test_resnet34_pooling_options(pooling, dim):
    model = tiny("resnet34", 40, pooling=pooling)
    assert (
        model.get_layer("pooling").__class__.__name__
        == {
            "tap": "TemporalAveragePooling",
            "asp": "AttentiveStatisticsPooling",
            "self_attention": "MultiHeadSelfAttentionPooling",
        }[pooling]
    )
    assert model(features(2, 100, 40)).shape == (2, dim)


def test_attention_penalty_reaches_the_training_loss():
    model = tiny("sacnn", 40, penalty_weight=1.0)
    x = features(4, 100, 40)
    target = model(x, training=False).numpy()
    assert len(model.losses) == 1
    penalty = float(model.losses[0])
    assert penalty > 1e-3
    model.compile(optimizer="sgd", loss="mse")
    loss = model.evaluate(x, target, batch_size=4, verbose=0)
    np.testing.assert_allclose(loss, penalty, rtol=1e-3)  # the mse part is 0
    history = model.fit(x, target, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_conv6_trunk_layer_names_are_stable():
    # The MAE pre-training (keras_spkid.training.mae) cuts the trunk at "block6_pool" and
    # protonet --init_from copies weights by layer name.
    model = build_conv6(128, channels=(2, 2, 2, 2, 2, 3))
    trunk = model.get_layer("block6_pool").output
    assert tuple(trunk.shape) == (None, None, 2, 3)
    assert [layer.name for layer in model.layers if layer.weights][:2] == [
        "block1_conv",
        "block1_bn",
    ]
