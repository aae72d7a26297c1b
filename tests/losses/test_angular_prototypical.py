"""Angular prototypical head against a numpy reference; w really stays positive."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.losses import AngularPrototypicalHead
from tests.losses.reference import cosine, cross_entropy

# 3 speakers x 3 clips x 3 dims, speaker-major.
CLIPS = np.array(
    [
        [[1.0, 0.1, 0.0], [0.9, 0.3, 0.1], [0.2, 1.0, -0.4]],
        [[0.0, 1.0, 0.2], [0.1, 0.8, 0.0], [-0.3, 0.9, 0.5]],
        [[0.3, 0.2, 1.0], [0.9, 0.1, 0.2], [0.0, -0.2, 1.0]],
    ],
    np.float32,
)
EMBEDDINGS = CLIPS.reshape(9, 3)
LABELS = np.repeat([4, 7, 1], 3).astype(np.int32)


def reference_logits(clips, w, b):
    """Query = clip 0, prototype = mean of clips 1..M-1, logits = w cos + b."""
    speakers = len(clips)
    logits = np.zeros((speakers, speakers))
    for i in range(speakers):
        for j in range(speakers):
            logits[i, j] = w * cosine(clips[i, 0], clips[j, 1:].mean(axis=0)) + b
    return logits


def test_logits_loss_and_accuracy_match_numpy():
    head = AngularPrototypicalHead(clips_per_speaker=3)
    expected = reference_logits(CLIPS, 10.0, -5.0)
    np.testing.assert_allclose(head.logits(EMBEDDINGS).numpy(), expected, rtol=1e-5, atol=1e-5)
    loss, accuracy = head(EMBEDDINGS, LABELS)
    assert float(loss) == pytest.approx(cross_entropy(expected, np.arange(3)), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean(expected.argmax(1) == np.arange(3)))
    # The prototype is the mean of *all* the other clips, not just clip 1.
    only_clip1 = np.array([[cosine(CLIPS[i, 0], CLIPS[j, 1]) for j in range(3)] for i in range(3)])
    assert not np.allclose(expected, 10.0 * only_clip1 - 5.0, atol=1e-3)


def test_learned_scale_and_bias_are_used():
    head = AngularPrototypicalHead(clips_per_speaker=3, init_w=3.0, init_b=1.5)
    np.testing.assert_allclose(
        head.logits(EMBEDDINGS).numpy(), reference_logits(CLIPS, 3.0, 1.5), rtol=1e-5, atol=1e-5
    )
    head.w.assign(7.0)
    head.b.assign(-2.0)
    np.testing.assert_allclose(
        head.logits(EMBEDDINGS).numpy(), reference_logits(CLIPS, 7.0, -2.0), rtol=1e-5, atol=1e-5
    )


def test_w_stays_positive_under_an_optimizer_step_and_in_the_forward_pass():
    head = AngularPrototypicalHead(clips_per_speaker=3)
    head(EMBEDDINGS, LABELS)
    # A huge step that would drive w to 10 - 100 = -90 is projected back to 1e-6.
    keras.optimizers.SGD(learning_rate=100.0).apply_gradients([(tf.constant(1.0), head.w)])
    assert float(head.w.numpy()) == pytest.approx(1e-6)
    # Even a w set negative by hand cannot flip the sign of the cosines.
    head.w.assign(-4.0)
    logits = head.logits(EMBEDDINGS).numpy()
    np.testing.assert_allclose(logits, reference_logits(CLIPS, 1e-6, -5.0), atol=1e-6)


def test_one_clip_per_speaker_is_refused_clearly():
    with pytest.raises(ValueError, match=r"clips_per_speaker >= 2 \(got 1\)"):
        AngularPrototypicalHead(clips_per_speaker=1)


def test_batch_that_is_not_whole_speakers_is_refused():
    head = AngularPrototypicalHead(clips_per_speaker=2)
    with pytest.raises(ValueError, match="not a whole number of speakers"):
        head(EMBEDDINGS, LABELS)  # 9 rows, M = 2


def test_bad_init_w_is_refused():
    with pytest.raises(ValueError, match="init_w > 0"):
        AngularPrototypicalHead(clips_per_speaker=2, init_w=0.0)
