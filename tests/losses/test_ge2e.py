"""GE2E head against a numpy reference with the leave-self-out centroid."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.losses import GE2EHead
from tests.losses.reference import cosine, cross_entropy

# 3 speakers x 3 clips x 3 dims; some clips point away from other centroids.
CLIPS = np.array(
    [
        [[1.0, 0.1, 0.0], [0.8, 0.4, 0.1], [0.6, -0.5, 0.2]],
        [[-1.0, 0.5, 0.2], [-0.4, 1.0, 0.0], [-0.7, 0.6, -0.3]],
        [[0.1, -0.3, 1.0], [0.5, 0.0, 0.9], [-0.2, -0.6, 0.8]],
    ],
    np.float32,
)
EMBEDDINGS = CLIPS.reshape(9, 3)
LABELS = np.repeat([0, 1, 2], 3).astype(np.int32)


def reference_cosines(clips):
    """[B, M, B]: own speaker by the mean of the other clips, others by the full mean."""
    speakers, m, _ = clips.shape
    out = np.zeros((speakers, m, speakers))
    for j in range(speakers):
        for i in range(m):
            for k in range(speakers):
                if k == j:
                    centroid = np.delete(clips[j], i, axis=0).mean(axis=0)
                else:
                    centroid = clips[k].mean(axis=0)
                out[j, i, k] = cosine(clips[j, i], centroid)
    return out


def test_logits_and_loss_match_numpy_with_leave_one_out_centroid():
    head = GE2EHead(clips_per_speaker=3)
    cos = reference_cosines(CLIPS)
    expected = (10.0 * cos - 5.0).reshape(9, 3)
    np.testing.assert_allclose(head.logits(EMBEDDINGS).numpy(), expected, rtol=1e-5, atol=1e-5)
    targets = np.repeat(np.arange(3), 3)
    loss, accuracy = head(EMBEDDINGS, LABELS)
    assert float(loss) == pytest.approx(cross_entropy(expected, targets), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean(expected.argmax(1) == targets))


def test_own_centroid_leaves_the_clip_out_and_negatives_are_not_clamped():
    head = GE2EHead(clips_per_speaker=3)
    cos = head.cosine(EMBEDDINGS).numpy()
    # With the clip included, the own-speaker cosine would be different (higher).
    inclusive = np.array(
        [[cosine(CLIPS[j, i], CLIPS[j].mean(axis=0)) for i in range(3)] for j in range(3)]
    )
    own = cos[np.arange(3), :, np.arange(3)]
    assert np.all(own < inclusive - 1e-3)
    # Negative similarities survive (voxceleb_trainer clamped them to 1e-6).
    assert cos.min() < -0.3
    np.testing.assert_allclose(cos, reference_cosines(CLIPS), atol=1e-5)


def test_two_clips_use_the_other_clip_as_own_centroid():
    clips = CLIPS[:, :2]
    head = GE2EHead(clips_per_speaker=2, init_w=2.0, init_b=0.5)
    cos = head.cosine(clips.reshape(6, 3)).numpy()
    for j in range(3):
        assert cos[j, 0, j] == pytest.approx(cosine(clips[j, 0], clips[j, 1]), abs=1e-6)
        assert cos[j, 1, j] == pytest.approx(cosine(clips[j, 1], clips[j, 0]), abs=1e-6)
    expected = (2.0 * reference_cosines(clips) + 0.5).reshape(6, 3)
    np.testing.assert_allclose(head.logits(clips.reshape(6, 3)).numpy(), expected, atol=1e-5)


def test_one_clip_per_speaker_is_refused():
    with pytest.raises(ValueError, match="clips_per_speaker >= 2"):
        GE2EHead(clips_per_speaker=1)
