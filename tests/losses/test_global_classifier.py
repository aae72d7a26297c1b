"""meta-SR's global classifier and the combined prototypical + GC loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.losses import (
    GlobalClassifier,
    GlobalClassifierHead,
    prototypical_gc_loss,
    prototypical_loss,
)
from tests.losses.reference import cross_entropy, unit

WEIGHTS = np.array(
    [[3.0, 0.0, 0.0], [0.0, 0.5, 0.5], [1.0, 2.0, 2.0], [0.0, 0.0, -2.0]], np.float32
)
EMBEDDINGS = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
LABELS = np.array([0, 1, 2], np.int32)


def classifier(weights=WEIGHTS):
    layer = GlobalClassifier(num_classes=len(weights))
    layer.build((None, 3))
    layer.kernel.assign(weights)
    return layer


def test_logits_use_unit_class_weights_and_raw_embeddings():
    layer = classifier()
    expected = EMBEDDINGS.astype(np.float64) @ unit(WEIGHTS).T
    np.testing.assert_allclose(layer(EMBEDDINGS).numpy(), expected, rtol=1e-5, atol=1e-6)
    # Rescaling a class row changes nothing; rescaling an embedding scales its logits.
    rescaled = classifier(WEIGHTS * np.array([[10.0], [0.1], [2.0], [7.0]], np.float32))
    np.testing.assert_allclose(rescaled(EMBEDDINGS).numpy(), expected, rtol=1e-5, atol=1e-6)
    scaled = layer(3.0 * EMBEDDINGS).numpy()
    np.testing.assert_allclose(scaled, 3.0 * expected, rtol=1e-5, atol=1e-5)


def test_head_is_cross_entropy_of_the_classifier():
    head = GlobalClassifierHead(num_classes=4)
    head.build((None, 3))
    head.classifier.kernel.assign(WEIGHTS)
    expected = EMBEDDINGS.astype(np.float64) @ unit(WEIGHTS).T
    np.testing.assert_allclose(head.logits(EMBEDDINGS).numpy(), expected, rtol=1e-5, atol=1e-6)
    loss, accuracy = head(EMBEDDINGS, LABELS, training=True)
    assert float(loss) == pytest.approx(cross_entropy(expected, LABELS), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean(expected.argmax(1) == LABELS))


def test_classifier_layer_saves_and_computes_in_float32(tmp_path, mixed_precision):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, GlobalClassifier(4)(keras.layers.Dense(3)(inputs)))
    assert model.layers[-1].compute_dtype == "float32"
    assert model.output.shape == (None, 4)
    model.save(tmp_path / "gc.keras")
    loaded = keras.models.load_model(tmp_path / "gc.keras")
    clone = GlobalClassifier.from_config(model.layers[-1].get_config())
    assert clone.get_config() == model.layers[-1].get_config()
    x = EMBEDDINGS.astype(np.float16)
    out = model(x)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(loaded(x).numpy(), out.numpy(), rtol=1e-6)


def test_combined_loss_is_episodic_plus_weighted_global_term():
    support = np.array([[1, 0, 0], [0.8, 0.2, 0], [0, 1, 0.2], [0.1, 0.9, 0.4]], np.float32)
    query = np.array([[0.9, 0.1, 0.1], [0.2, 1.0, 0.0]], np.float32)
    query_labels = np.array([0, 1], np.int32)
    support_speakers = np.array([2, 2, 0, 0], np.int32)
    query_speakers = np.array([2, 0], np.int32)
    layer = classifier()

    protos = np.stack([support[:2].mean(0), support[2:].mean(0)]).astype(np.float64)
    loss_e = cross_entropy(query @ unit(protos).T, query_labels)  # meta-SR's projection
    rows = np.concatenate([support, query]).astype(np.float64)
    speakers = np.concatenate([support_speakers, query_speakers])
    loss_g = cross_entropy(rows @ unit(WEIGHTS).T, speakers)

    out = prototypical_gc_loss(
        support,
        query,
        query_labels,
        support_speakers,
        query_speakers,
        layer,
        n_way=2,
        k_shot=2,
        gc_weight=0.5,
    )
    assert float(out["loss_e"]) == pytest.approx(loss_e, rel=1e-5)
    assert float(out["loss_g"]) == pytest.approx(loss_g, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(loss_e + 0.5 * loss_g, rel=1e-5)
    episodic, _ = prototypical_loss(support, query, query_labels, 2, 2, "projection")
    assert float(out["loss_e"]) == pytest.approx(float(episodic), rel=1e-6)
    assert set(out) == {"loss", "loss_e", "loss_g", "accuracy_e", "accuracy_g"}
