"""What every loss head must do: gradients, serialisation, saving, float32 under
mixed precision, graph mode with an unknown batch size, XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.losses import (
    AAMSoftmaxHead,
    AMSoftmaxHead,
    AngularPrototypicalHead,
    GE2EHead,
    GlobalClassifierHead,
    SoftmaxAngularPrototypicalHead,
    SoftmaxHead,
    TripletHead,
)

HEADS = {
    "softmax": lambda: SoftmaxHead(num_classes=5),
    "amsoftmax": lambda: AMSoftmaxHead(num_classes=5, margin=0.3, scale=15.0),
    "aamsoftmax": lambda: AAMSoftmaxHead(num_classes=5, margin=0.2, scale=30.0),
    "angleproto": lambda: AngularPrototypicalHead(clips_per_speaker=2, init_w=8.0, init_b=-3.0),
    "ge2e": lambda: GE2EHead(clips_per_speaker=2),
    "triplet": lambda: TripletHead(clips_per_speaker=2, margin=1.0, mining="semihard"),
    "triplet_random": lambda: TripletHead(clips_per_speaker=2, margin=1.0, mining="random", seed=3),
    "softmaxproto": lambda: SoftmaxAngularPrototypicalHead(num_classes=5, clips_per_speaker=2),
    "gc": lambda: GlobalClassifierHead(num_classes=5),
}
DETERMINISTIC = [name for name in HEADS if name != "triplet_random"]

# 3 speakers x 2 clips x 3 dims, speaker-major, global labels 0, 2, 4.
EMBEDDINGS = np.array(
    [
        [1.0, 0.2, -0.1],
        [0.7, 0.5, 0.3],
        [-0.2, 1.0, 0.4],
        [0.1, 0.6, -0.8],
        [0.3, -0.4, 1.0],
        [0.9, 0.1, 0.6],
    ],
    np.float32,
)
LABELS = np.array([0, 0, 2, 2, 4, 4], np.int32)


@pytest.mark.parametrize("name", HEADS)
def test_gradients_reach_embeddings_and_head_weights(name):
    head = HEADS[name]()
    x = tf.Variable(EMBEDDINGS)
    with tf.GradientTape() as tape:
        loss, _ = head(x, LABELS, training=True)
    grads = tape.gradient(loss, [x] + head.trainable_weights)
    assert all(g is not None for g in grads)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert np.linalg.norm(grads[0].numpy()) > 0
    if name in ("angleproto", "ge2e", "softmaxproto"):
        assert {w.name for w in head.trainable_weights} >= {"w", "b"}


def test_aam_gradient_is_finite_when_an_embedding_sits_on_its_class_vector():
    head = AAMSoftmaxHead(num_classes=3)
    head.build((None, 3))
    head.kernel.assign(np.eye(3, dtype=np.float32))
    x = tf.Variable(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32))
    with tf.GradientTape() as tape:
        loss, _ = head(x, np.array([0, 2]), training=True)
    grads = tape.gradient(loss, [x, head.kernel])
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def fresh_pair(name):
    """A head and its clone through get_config/from_config, with the same weights."""
    head = HEADS[name]()
    clone = type(head).from_config(head.get_config())
    for layer in (head, clone):
        layer.build((None, 3))
    clone.set_weights(head.get_weights())
    return head, clone


@pytest.mark.parametrize("name", HEADS)
def test_config_round_trip_gives_the_same_head(name):
    head, clone = fresh_pair(name)
    assert clone.get_config() == head.get_config()
    for training in (False, True):
        a = head(EMBEDDINGS, LABELS, training=training)
        b = clone(EMBEDDINGS, LABELS, training=training)
        np.testing.assert_allclose([float(v) for v in a], [float(v) for v in b], rtol=1e-6)


@pytest.mark.parametrize("name", HEADS)
def test_keras_file_round_trip_of_a_model_with_the_head(name, tmp_path):
    embeddings = keras.Input((3,), name="embeddings")
    labels = keras.Input((), dtype="int32", name="labels")
    projected = keras.layers.Dense(3, name="projection")(embeddings)
    loss, accuracy = HEADS[name]()(projected, labels)
    model = keras.Model([embeddings, labels], [loss, accuracy])
    # Move the weights away from their initial values so loading must restore them.
    for weight in model.trainable_weights:
        weight.assign(weight + 0.05)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-1]) is type(model.layers[-1])
    for training in (False, True):
        expected = model([EMBEDDINGS, LABELS], training=training)
        actual = loaded([EMBEDDINGS, LABELS], training=training)
        np.testing.assert_allclose(
            [float(v) for v in actual], [float(v) for v in expected], rtol=1e-6
        )


@pytest.mark.parametrize("name", HEADS)
def test_mixed_float16_policy_still_computes_in_float32(name, mixed_precision):
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    head = HEADS[name]()
    assert head.compute_dtype == "float32" and head.variable_dtype == "float32"
    loss, accuracy = head(EMBEDDINGS.astype(np.float16), LABELS, training=True)
    assert loss.dtype == tf.float32 and accuracy.dtype == tf.float32
    assert np.isfinite(float(loss))
    assert all(w.dtype == "float32" for w in head.weights)
    # Behind a float16 layer inside a model.
    embeddings = keras.Input((3,))
    labels = keras.Input((), dtype="int32")
    projected = keras.layers.Dense(3)(embeddings)
    model = keras.Model([embeddings, labels], HEADS[name]()(projected, labels))
    loss, _ = model([EMBEDDINGS, LABELS], training=True)
    assert loss.dtype == tf.float32 and np.isfinite(float(loss))


def test_float16_embeddings_match_float32_values():
    head = GE2EHead(clips_per_speaker=2)
    loss16, _ = head(EMBEDDINGS.astype(np.float16), LABELS)
    loss32, _ = head(EMBEDDINGS.astype(np.float16).astype(np.float32), LABELS)
    assert float(loss16) == pytest.approx(float(loss32), rel=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_graph_mode_with_unknown_batch_size(jit_compile):
    # One traced function for all heads keeps the test fast.
    names = list(HEADS) if not jit_compile else DETERMINISTIC  # XLA has its own RNG
    pairs = {name: fresh_pair(name) for name in names}
    spec = [tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None], tf.int32)]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def step(x, y):
        return {name: head(x, y, training=True) for name, (head, _) in pairs.items()}

    graph = step(EMBEDDINGS, LABELS)
    for name, (_, clone) in pairs.items():
        eager = clone(EMBEDDINGS, LABELS, training=True)
        np.testing.assert_allclose(
            [float(v) for v in graph[name]], [float(v) for v in eager], rtol=1e-5, err_msg=name
        )
