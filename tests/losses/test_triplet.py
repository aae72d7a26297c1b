"""Triplet head: mining picks the expected negatives on a hand-made example."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.losses import TripletHead

# Unit-circle directions (degrees), 3 speakers x 2 clips, speaker-major:
# rows 0,1 = speaker A (anchor 0 deg, positive 50 deg)
# rows 2,3 = speaker B (anchor 30 deg, positive 170 deg)
# rows 4,5 = speaker C (anchor 70 deg, positive 260 deg)
ANGLES = np.array([0.0, 50.0, 30.0, 170.0, 70.0, 260.0])
# Different norms: the head must L2-normalise before measuring distances.
NORMS = np.array([1.0, 3.0, 0.5, 2.0, 4.0, 1.5])
EMBEDDINGS = np.stack(
    [NORMS * np.cos(np.radians(ANGLES)), NORMS * np.sin(np.radians(ANGLES)), np.zeros(6)], axis=1
).astype(np.float32)
LABELS = np.array([3, 3, 8, 8, 5, 5], np.int32)


def sq_dist(deg_a, deg_b):
    """Squared distance between unit vectors at these angles: 2 - 2 cos(delta)."""
    return 2.0 - 2.0 * np.cos(np.radians(deg_a - deg_b))


def test_hard_mining_picks_the_closest_other_speaker_clip():
    head = TripletHead(clips_per_speaker=2, mining="hard")
    # A (0 deg): 30 deg of B is closest. B (30 deg): 50 deg of A. C (70 deg): 50 deg of A.
    np.testing.assert_array_equal(head.select_negatives(EMBEDDINGS, LABELS).numpy(), [2, 1, 1])


def test_semihard_mining_picks_closest_beyond_the_positive_or_falls_back():
    head = TripletHead(clips_per_speaker=2, mining="semihard")
    # A: positive at 50 deg, so 30 deg is too close; 70 deg (row 4) is the closest beyond.
    # B and C: their positives (140 and 170 deg away) are farther than every negative,
    # so they fall back to the hardest negative (row 1).
    np.testing.assert_array_equal(head.select_negatives(EMBEDDINGS, LABELS).numpy(), [4, 1, 1])


def test_loss_and_accuracy_match_hand_computed_values():
    margin = 0.3
    d_ap = np.array([sq_dist(0, 50), sq_dist(30, 170), sq_dist(70, 260)])
    cases = {
        "hard": np.array([sq_dist(0, 30), sq_dist(30, 50), sq_dist(70, 50)]),
        "semihard": np.array([sq_dist(0, 70), sq_dist(30, 50), sq_dist(70, 50)]),
    }
    for mining, d_an in cases.items():
        head = TripletHead(clips_per_speaker=2, margin=margin, mining=mining)
        loss, accuracy = head(EMBEDDINGS, LABELS)
        assert float(loss) == pytest.approx(np.maximum(d_ap - d_an + margin, 0).mean(), rel=1e-5)
        assert float(accuracy) == pytest.approx(np.mean(d_ap < d_an))
    # Only A's semi-hard triplet is satisfied.
    _, accuracy = TripletHead(mining="semihard")(EMBEDDINGS, LABELS)
    assert float(accuracy) == pytest.approx(1 / 3)


def test_easy_triplets_give_zero_loss():
    # Two tight, far-apart speakers: d_ap ~ 0, d_an ~ 4, so relu(...) = 0.
    x = np.array([[1, 0, 0], [0.99, 0.01, 0], [-1, 0, 0], [-0.99, -0.01, 0]], np.float32)
    loss, accuracy = TripletHead(margin=0.3)(x, np.array([0, 0, 1, 1]))
    assert float(loss) == 0.0
    assert float(accuracy) == 1.0


def test_random_mining_draws_other_speakers_and_is_seeded():
    head = TripletHead(mining="random", seed=7)
    draws = np.stack([head.select_negatives(EMBEDDINGS, LABELS).numpy() for _ in range(30)])
    anchor_labels = LABELS[[0, 2, 4]]
    assert np.all(LABELS[draws] != anchor_labels[None, :])
    for anchor in range(3):
        assert len(set(draws[:, anchor])) == 4  # all four candidates get drawn
    again = TripletHead(mining="random", seed=7)
    replay = np.stack([again.select_negatives(EMBEDDINGS, LABELS).numpy() for _ in range(30)])
    np.testing.assert_array_equal(draws, replay)


def test_negatives_are_defined_by_labels():
    # If B and C carried the same label, neither may serve as the other's negative.
    labels = np.array([3, 3, 8, 8, 8, 8], np.int32)
    head = TripletHead(mining="hard")
    np.testing.assert_array_equal(head.select_negatives(EMBEDDINGS, labels).numpy(), [2, 1, 1])
    picks = TripletHead(mining="semihard").select_negatives(EMBEDDINGS, labels).numpy()
    assert set(picks[1:]) <= {0, 1}


def test_extra_clips_are_negative_candidates_and_not_positives():
    # M = 3: clip 2 of each speaker is a candidate negative for the other speakers.
    x = np.array(
        [[1, 0, 0], [0.6, 0.8, 0], [0.3, 0.95, 0], [0, 1, 0], [0, 0.8, 0.6], [0.8, 0.1, 0.59]],
        np.float32,
    )
    head = TripletHead(clips_per_speaker=3, mining="hard")
    picks = head.select_negatives(x, np.array([0, 0, 0, 1, 1, 1])).numpy()
    assert picks[0] == 5  # speaker 1's clip 2 is closest to anchor 0
    assert picks[1] == 2  # speaker 0's clip 2 is closest to anchor 1 (row 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(clips_per_speaker=1), "clips_per_speaker >= 2"),
        (dict(mining="hardest"), "mining must be one of"),
        (dict(margin=-1.0), "margin >= 0"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TripletHead(**kwargs)


def test_single_speaker_batch_is_refused():
    with pytest.raises(ValueError, match="at least 2 speakers"):
        TripletHead()(EMBEDDINGS[:2], LABELS[:2])
