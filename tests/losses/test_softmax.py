"""Softmax, AM-softmax and AAM-softmax heads against numpy values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_spkid.losses import AAMSoftmaxHead, AMSoftmaxHead, SoftmaxHead
from tests.losses.reference import cosine, cross_entropy, unit

# 3 classes in 3-d; class vectors are the *columns* of the [D, C] kernel.
CLASS_VECTORS = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
KERNEL = CLASS_VECTORS.T.copy()
# 2 speakers x 2 clips, speaker-major, global labels 0 and 2.
EMBEDDINGS = np.array(
    [[1.0, 0.2, 0.0], [0.5, -0.1, 0.3], [0.4, 0.5, 0.6], [-0.2, 0.3, 0.9]], np.float32
)
LABELS = np.array([0, 0, 2, 2], np.int32)


def cosines():
    return np.array([[cosine(x, w) for w in CLASS_VECTORS] for x in EMBEDDINGS])


def built(head):
    head.build((None, 3))
    head.kernel.assign(KERNEL)
    return head


def test_softmax_head_is_linear_plus_cross_entropy():
    head = SoftmaxHead(num_classes=3)
    head.build((None, 3))
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    head.kernel.assign(KERNEL)
    head.bias.assign(bias)
    expected_logits = EMBEDDINGS.astype(np.float64) @ KERNEL + bias
    np.testing.assert_allclose(head.logits(EMBEDDINGS), expected_logits, rtol=1e-6)
    loss, accuracy = head(EMBEDDINGS, LABELS, training=True)
    assert float(loss) == pytest.approx(cross_entropy(expected_logits, LABELS), rel=1e-5)
    expected_accuracy = np.mean(expected_logits.argmax(1) == LABELS)
    assert float(accuracy) == pytest.approx(expected_accuracy)


def test_amsoftmax_margin_only_on_target_and_only_in_training():
    head = built(AMSoftmaxHead(num_classes=3, margin=0.2, scale=30.0))
    cos = cosines()
    plain = head.logits(EMBEDDINGS, training=False).numpy()
    np.testing.assert_allclose(plain, 30.0 * cos, rtol=1e-5, atol=1e-5)
    train = head.logits(EMBEDDINGS, LABELS, training=True).numpy()
    difference = plain - train
    expected_difference = np.zeros_like(difference)
    expected_difference[np.arange(4), LABELS] = 30.0 * 0.2
    np.testing.assert_allclose(difference, expected_difference, atol=1e-4)

    margin_logits = 30.0 * (cos - 0.2 * np.eye(3)[LABELS])
    loss, _ = head(EMBEDDINGS, LABELS, training=True)
    assert float(loss) == pytest.approx(cross_entropy(margin_logits, LABELS), rel=1e-5)
    loss_eval, _ = head(EMBEDDINGS, LABELS, training=False)
    assert float(loss_eval) == pytest.approx(cross_entropy(30.0 * cos, LABELS), rel=1e-5)
    assert float(loss) > float(loss_eval)


def test_margin_heads_measure_accuracy_on_margin_free_logits():
    # cos to classes 0, 1, 2 is 0.686, 0.514, 0.396: right without the margin, wrong
    # with it (AM: 0.686 - 0.3 < 0.514; AAM: cos(0.814 + 0.5) = 0.254 < 0.514).
    x = np.array([[0.8, 0.6, -0.6]], np.float32)
    heads = (AMSoftmaxHead(3, margin=0.3, scale=10.0), AAMSoftmaxHead(3, margin=0.5, scale=10.0))
    for head in heads:
        head = built(head)
        train = head.logits(x, np.array([0]), training=True).numpy()
        assert train.argmax() != 0  # the margin flips the arg-max ...
        _, accuracy = head(x, np.array([0]), training=True)
        assert float(accuracy) == 1.0  # ... but accuracy uses the plain cosines


def test_aamsoftmax_adds_angle_margin_on_target_only():
    margin, scale = 0.2, 30.0
    head = built(AAMSoftmaxHead(num_classes=3, margin=margin, scale=scale))
    cos = cosines()
    theta = np.arccos(cos)
    assert np.all(theta[np.arange(4), LABELS] + margin < math.pi)  # normal branch here
    expected = scale * cos.copy()
    expected[np.arange(4), LABELS] = scale * np.cos(theta[np.arange(4), LABELS] + margin)
    train = head.logits(EMBEDDINGS, LABELS, training=True).numpy()
    np.testing.assert_allclose(train, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head.logits(EMBEDDINGS).numpy(), scale * cos, rtol=1e-5, atol=1e-5)
    loss, _ = head(EMBEDDINGS, LABELS, training=True)
    assert float(loss) == pytest.approx(cross_entropy(expected, LABELS), rel=1e-4)


def test_aamsoftmax_fallback_when_theta_plus_margin_passes_pi():
    margin, scale = 0.2, 30.0
    head = built(AAMSoftmaxHead(num_classes=3, margin=margin, scale=scale))
    # Nearly opposite to class 0's vector: theta = pi - 0.05, so theta + m > pi.
    x = np.array([[-1.0, 0.05, 0.0]], np.float32)
    c = cosine(x[0], CLASS_VECTORS[0])
    assert math.acos(c) + margin > math.pi
    target = head.logits(x, np.array([0]), training=True).numpy()[0, 0]
    expected = scale * (c - math.sin(math.pi - margin) * margin)
    assert target == pytest.approx(expected, rel=1e-5)
    # cos(theta + m) would have *risen* past pi; the fallback keeps it below cos(theta).
    assert target < scale * c
    assert expected != pytest.approx(scale * math.cos(math.acos(c) + margin), abs=1e-3)
    others = head.logits(x, np.array([0]), training=True).numpy()[0, 1:]
    np.testing.assert_allclose(others, head.logits(x).numpy()[0, 1:], rtol=1e-6)


def test_aamsoftmax_easy_margin_skips_negative_cosines():
    head = built(AAMSoftmaxHead(num_classes=3, margin=0.2, scale=30.0, easy_margin=True))
    x = np.array([[-1.0, 0.3, 0.0], [1.0, 0.3, 0.0]], np.float32)
    labels = np.array([0, 0])
    train = head.logits(x, labels, training=True).numpy()
    plain = head.logits(x).numpy()
    assert train[0, 0] == pytest.approx(plain[0, 0], rel=1e-6)  # cos < 0: untouched
    c = cosine(x[1], CLASS_VECTORS[0])
    assert train[1, 0] == pytest.approx(30.0 * math.cos(math.acos(c) + 0.2), rel=1e-5)


def test_margin_logits_in_training_need_labels():
    head = AMSoftmaxHead(num_classes=3)
    with pytest.raises(ValueError, match="needs labels"):
        head.logits(EMBEDDINGS, training=True)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SoftmaxHead(num_classes=1), "num_classes >= 2"),
        (lambda: AMSoftmaxHead(num_classes=3, scale=0), "scale > 0"),
        (lambda: AMSoftmaxHead(num_classes=3, margin=-0.1), "margin >= 0"),
        (lambda: AAMSoftmaxHead(num_classes=3, margin=2.0), "margin < pi/2"),
    ],
)
def test_bad_settings_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_classification_heads_accept_one_clip_per_speaker():
    x = unit(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])).astype(np.float32)
    head = built(AMSoftmaxHead(num_classes=3, margin=0.2, scale=30.0))
    loss, accuracy = head(x, np.array([0, 1, 2]), training=True)
    assert float(accuracy) == 1.0
    assert np.isfinite(float(loss))
