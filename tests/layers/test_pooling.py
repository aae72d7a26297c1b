"""Pooling layers against numpy on tiny inputs, their serialisation and mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_spkid.layers import (
    AttentiveStatisticsPooling,
    MultiHeadSelfAttentionPooling,
    SelfAttentivePooling,
    StructuredSelfAttentionPooling,
    TemporalAveragePooling,
    get_pooling,
)

RNG = np.random.default_rng(0)


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sap_reference(x, kernel, bias, context):
    weights = softmax(np.tanh(x @ kernel + bias) @ context[:, 0], axis=1)  # [B, T]
    return weights, (weights[:, :, None] * x).sum(axis=1)


def test_tap_is_the_mean_over_time():
    x = RNG.normal(size=(3, 7, 5)).astype("float32")
    out = TemporalAveragePooling()(x).numpy()
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out, x.mean(axis=1), rtol=1e-6, atol=1e-6)


def test_sap_with_hand_set_weights_matches_numpy():
    x = RNG.normal(size=(2, 6, 4)).astype("float32")
    layer = SelfAttentivePooling(units=3)
    layer.build(x.shape)
    kernel = RNG.normal(size=(4, 3)).astype("float32")
    bias = np.array([0.1, -0.2, 0.3], "float32")
    context = RNG.normal(size=(3, 1)).astype("float32") * 2
    layer.set_weights([kernel, bias, context])
    weights, expected = sap_reference(x, kernel, bias, context)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.attention_weights(x).numpy(), weights, rtol=1e-5, atol=1e-6)
    # Weights are not uniform here, so SAP really differs from the plain mean.
    assert not np.allclose(expected, x.mean(axis=1), atol=1e-3)


def test_sap_defaults_to_input_width_and_zero_context_gives_the_mean():
    x = RNG.normal(size=(2, 5, 4)).astype("float32")
    layer = SelfAttentivePooling()
    layer.build(x.shape)
    assert layer.kernel.shape == (4, 4)
    kernel, bias, context = layer.get_weights()
    layer.set_weights([kernel, bias, np.zeros_like(context)])
    np.testing.assert_allclose(layer(x).numpy(), x.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_asp_weighted_mean_and_std_match_numpy():
    x = RNG.normal(size=(2, 9, 3)).astype("float32")
    layer = AttentiveStatisticsPooling(units=5)
    layer.build(x.shape)
    kernel = RNG.normal(size=(3, 5)).astype("float32")
    bias = RNG.normal(size=(5,)).astype("float32")
    context = RNG.normal(size=(5, 1)).astype("float32")
    layer.set_weights([kernel, bias, context])
    weights, mean = sap_reference(x, kernel, bias, context)
    variance = (weights[:, :, None] * (x - mean[:, None, :]) ** 2).sum(axis=1)
    out = layer(x).numpy()
    assert out.shape == (2, 6)
    np.testing.assert_allclose(out[:, :3], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 3:], np.sqrt(variance), rtol=1e-4, atol=1e-5)


def test_asp_clamps_the_variance_before_the_square_root():
    x = np.tile(RNG.normal(size=(2, 1, 4)).astype("float32"), (1, 8, 1))  # constant over time
    layer = AttentiveStatisticsPooling(variance_floor=1e-5)
    out = layer(x).numpy()
    np.testing.assert_allclose(out[:, :4], x[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 4:], np.sqrt(1e-5), rtol=1e-2)
    with pytest.raises(ValueError, match="variance_floor"):
        AttentiveStatisticsPooling(variance_floor=0.0)


def structured_reference(h, ws1, ws2):
    attention = softmax(np.tanh(h @ ws1) @ ws2, axis=1)  # [B, T, hops], over time
    hops = np.einsum("bth,btc->bhc", attention, h)
    return attention, hops


def set_random_structured_weights(layer, channels):
    ws1 = RNG.normal(size=(channels, layer.units)).astype("float32")
    ws2 = RNG.normal(size=(layer.units, layer.n_hops)).astype("float32") * 2
    layer.set_weights([ws1, ws2])
    return ws1, ws2


def test_self_attention_matches_numpy_and_weights_sum_to_one_over_time():
    h = RNG.normal(size=(3, 11, 5)).astype("float32")
    layer = MultiHeadSelfAttentionPooling(n_hops=4, units=6)
    layer.build(h.shape)
    ws1, ws2 = set_random_structured_weights(layer, 5)
    attention, hops = structured_reference(h, ws1, ws2)
    ours = layer.attention_weights(h).numpy()
    assert ours.shape == (3, 11, 4)
    np.testing.assert_allclose(ours.sum(axis=1), np.ones((3, 4)), atol=1e-5)
    np.testing.assert_allclose(ours, attention, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(h).numpy(), hops.mean(axis=1), rtol=1e-5, atol=1e-5)
    # The hops attend differently, so the mean over hops is not any single hop.
    assert not np.allclose(hops[:, 0], hops[:, 1], atol=1e-3)


def test_self_attention_concat_merge_flattens_the_hops():
    h = RNG.normal(size=(2, 7, 3)).astype("float32")
    layer = StructuredSelfAttentionPooling(n_hops=2, units=4, merge="concat")
    assert StructuredSelfAttentionPooling is MultiHeadSelfAttentionPooling
    layer.build(h.shape)
    ws1, ws2 = set_random_structured_weights(layer, 3)
    _, hops = structured_reference(h, ws1, ws2)
    np.testing.assert_allclose(layer(h).numpy(), hops.reshape(2, 6), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        SelfAttentivePooling,
        AttentiveStatisticsPooling,
        lambda: MultiHeadSelfAttentionPooling(n_hops=3, units=4),
    ],
    ids=["sap", "asp", "self_attention"],
)
def test_an_example_does_not_depend_on_the_rest_of_its_batch(make):
    # Regression test for the inzpeech SelfAttention, whose softmax ran over the batch
    # axis: example 0 alone must pool exactly as it does next to two others.
    batch = RNG.normal(size=(3, 10, 4)).astype("float32") * 3
    layer = make()
    alone = layer(batch[:1]).numpy()
    together = layer(batch).numpy()
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)
    reordered = layer(batch[::-1]).numpy()
    np.testing.assert_allclose(reordered[-1], together[0], rtol=1e-5, atol=1e-6)


def test_self_attention_penalty_is_exposed_and_trained_on():
    h = RNG.normal(size=(4, 9, 3)).astype("float32")
    inputs = keras.Input((None, 3))
    layer = MultiHeadSelfAttentionPooling(n_hops=3, units=5, penalty_weight=0.5)
    model = keras.Model(inputs, layer(inputs))
    ws1, ws2 = set_random_structured_weights(layer, 3)
    attention, _ = structured_reference(h, ws1, ws2)
    gram = np.einsum("bth,btk->bhk", attention, attention)
    expected = 0.5 * ((gram - np.eye(3)) ** 2).sum(axis=(1, 2)).mean()
    assert expected > 0.01

    prediction = model(h)
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-4)
    # fit/evaluate add it: with targets equal to the prediction, the loss IS the penalty.
    model.compile(loss="mse")
    loss = model.evaluate(h, prediction.numpy(), verbose=0, batch_size=4)
    np.testing.assert_allclose(loss, expected, rtol=1e-3)

    without = MultiHeadSelfAttentionPooling(n_hops=3, units=5)
    without(h)
    assert without.losses == []


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="merge"):
        MultiHeadSelfAttentionPooling(merge="max")
    with pytest.raises(ValueError, match="penalty_weight"):
        MultiHeadSelfAttentionPooling(penalty_weight=-1)
    with pytest.raises(ValueError, match="time, channels"):
        TemporalAveragePooling()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="asp, sap, self_attention, stats, tap"):
        get_pooling("max")
    assert isinstance(get_pooling("ASP", units=3), AttentiveStatisticsPooling)


@pytest.mark.parametrize(
    "layer",
    [
        TemporalAveragePooling(),
        SelfAttentivePooling(units=3),
        AttentiveStatisticsPooling(units=3, variance_floor=1e-4),
        MultiHeadSelfAttentionPooling(n_hops=2, units=3, merge="concat", penalty_weight=0.1),
    ],
    ids=["tap", "sap", "asp", "self_attention"],
)
def test_layers_round_trip_through_a_saved_model(tmp_path, layer):
    h = RNG.normal(size=(2, 6, 4)).astype("float32")
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, layer(inputs))
    for variable in model.weights:
        variable.assign(RNG.normal(size=variable.shape).astype("float32"))
    path = tmp_path / "pool.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.layers[-1]
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    np.testing.assert_allclose(loaded(h).numpy(), model(h).numpy(), atol=1e-6)


def test_mixed_precision_keeps_softmax_in_float32(mixed_precision):
    h = (RNG.normal(size=(2, 400, 8)) * 4).astype("float16")
    layer = MultiHeadSelfAttentionPooling(n_hops=4, units=8)
    out = layer(h)
    assert layer.compute_dtype == "float16"
    assert out.dtype == "float16" and np.isfinite(out.numpy()).all()
    attention = layer.attention_weights(h)
    assert attention.dtype == "float32"
    np.testing.assert_allclose(attention.numpy().sum(axis=1), 1.0, atol=1e-5)
    stats = AttentiveStatisticsPooling()(h * 100)  # squares far beyond float16's range
    assert np.isfinite(stats.numpy()).all()
