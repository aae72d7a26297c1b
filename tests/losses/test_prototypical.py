"""Episodic prototypical loss: shot averaging, the four distances, task batches."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.losses import prototypes, prototypical_logits, prototypical_loss
from tests.losses.reference import cross_entropy, unit

# 2-way 3-shot, class-major: rows 0-2 are class 0, rows 3-5 class 1.
SUPPORT = np.array(
    [
        [1.0, 0.0, 0.0],
        [3.0, 0.0, 0.0],
        [2.0, 3.0, 0.0],
        [0.0, 1.0, 1.0],
        [0.0, 2.0, 0.0],
        [0.0, 0.0, 4.0],
    ],
    np.float32,
)
PROTOTYPES = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 5.0 / 3.0]])
QUERY = np.array([[1.5, 0.5, 0.0], [0.0, 1.0, 1.0], [2.0, 2.0, 2.0]], np.float32)
QUERY_LABELS = np.array([0, 1, 1], np.int32)


def test_prototypes_average_the_shots():
    protos = prototypes(SUPPORT, n_way=2, k_shot=3).numpy()
    np.testing.assert_allclose(protos, PROTOTYPES, rtol=1e-6)
    # Regression against meta-SR's training code, which used one support row per class.
    assert not np.allclose(prototypes(SUPPORT, 2, 3).numpy(), SUPPORT[[0, 3]])


def test_one_shot_prototypes_are_the_support_rows():
    np.testing.assert_array_equal(prototypes(SUPPORT, n_way=6, k_shot=1).numpy(), SUPPORT)


def test_squared_euclidean_euclidean_and_cosine_logits():
    diff = QUERY[:, None, :].astype(np.float64) - PROTOTYPES[None, :, :]
    squared = (diff**2).sum(-1)
    protos = prototypes(SUPPORT, 2, 3)
    np.testing.assert_allclose(
        prototypical_logits(QUERY, protos, "squared_euclidean").numpy(),
        -squared,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        prototypical_logits(QUERY, protos, "euclidean").numpy(), -np.sqrt(squared), rtol=1e-5
    )
    cos = unit(QUERY) @ unit(PROTOTYPES).T
    np.testing.assert_allclose(
        prototypical_logits(QUERY, protos, "cosine", scale=5.0).numpy(), 5.0 * cos, rtol=1e-5
    )
    projection = QUERY.astype(np.float64) @ unit(PROTOTYPES).T
    np.testing.assert_allclose(
        prototypical_logits(QUERY, protos, "projection").numpy(), projection, rtol=1e-5
    )
    # Squared and plain distances rank the prototypes alike but give different losses.
    loss_sq, _ = prototypical_loss(SUPPORT, QUERY, QUERY_LABELS, 2, 3, "squared_euclidean")
    loss_eu, _ = prototypical_loss(SUPPORT, QUERY, QUERY_LABELS, 2, 3, "euclidean")
    assert float(loss_sq) == pytest.approx(cross_entropy(-squared, QUERY_LABELS), rel=1e-5)
    assert float(loss_eu) == pytest.approx(cross_entropy(-np.sqrt(squared), QUERY_LABELS), rel=1e-5)
    assert abs(float(loss_sq) - float(loss_eu)) > 0.1


def test_loss_and_accuracy_match_numpy():
    squared = ((QUERY[:, None, :].astype(np.float64) - PROTOTYPES[None]) ** 2).sum(-1)
    loss, accuracy = prototypical_loss(SUPPORT, QUERY, QUERY_LABELS, n_way=2, k_shot=3)
    assert float(loss) == pytest.approx(cross_entropy(-squared, QUERY_LABELS), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean((-squared).argmax(1) == QUERY_LABELS))
    assert float(accuracy) == pytest.approx(2 / 3)  # query 2 is nearer class 0


def test_a_leading_task_axis_averages_over_tasks():
    other_support = SUPPORT[::-1].copy()
    other_labels = np.array([1, 0, 0], np.int32)
    per_task = [
        prototypical_loss(SUPPORT, QUERY, QUERY_LABELS, 2, 3, "cosine", 3.0),
        prototypical_loss(other_support, QUERY, other_labels, 2, 3, "cosine", 3.0),
    ]
    loss, accuracy = prototypical_loss(
        np.stack([SUPPORT, other_support]),
        np.stack([QUERY, QUERY]),
        np.stack([QUERY_LABELS, other_labels]),
        2,
        3,
        "cosine",
        3.0,
    )
    assert float(loss) == pytest.approx(np.mean([float(v) for v, _ in per_task]), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean([float(a) for _, a in per_task]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: prototypes(SUPPORT, n_way=2, k_shot=2), "expected n_way \\* k_shot"),
        (lambda: prototypes(SUPPORT, n_way=0, k_shot=3), "n_way must be a positive integer"),
        (lambda: prototypical_logits(QUERY, PROTOTYPES, "manhattan"), "distance must be one of"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_float16_inputs_give_a_float32_loss():
    loss, accuracy = prototypical_loss(
        SUPPORT.astype(np.float16), QUERY.astype(np.float16), QUERY_LABELS, 2, 3
    )
    assert loss.dtype.name == "float32" and accuracy.dtype.name == "float32"
    assert np.isfinite(float(loss))


def test_every_loss_flag_of_the_protonet_trainer_names_a_known_distance():
    # training.config imports no TensorFlow, so it names distances instead of importing them
    from keras_spkid.losses.prototypical import DISTANCES
    from keras_spkid.training.config import LOSS_DISTANCES

    assert LOSS_DISTANCES and set(LOSS_DISTANCES.values()) <= set(DISTANCES)
