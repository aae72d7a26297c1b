"""get_loss_head: names, and clear errors before any work."""

from __future__ import annotations

import numpy as np
import pytest

from keras_spkid.losses import (
    AAMSoftmaxHead,
    AMSoftmaxHead,
    AngularPrototypicalHead,
    GE2EHead,
    GlobalClassifierHead,
    SoftmaxAngularPrototypicalHead,
    SoftmaxHead,
    TripletHead,
    get_loss_head,
)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("softmax", SoftmaxHead),
        ("amsoftmax", AMSoftmaxHead),
        ("aamsoftmax", AAMSoftmaxHead),
        ("angleproto", AngularPrototypicalHead),
        ("ge2e", GE2EHead),
        ("triplet", TripletHead),
        ("softmaxproto", SoftmaxAngularPrototypicalHead),
        ("gc", GlobalClassifierHead),
    ],
)
def test_names_build_the_right_head(name, cls):
    head = get_loss_head(name, num_classes=5, clips_per_speaker=2)
    assert type(head) is cls
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    loss, accuracy = head(x, np.array([0, 0, 3, 3, 4, 4]), training=True)
    assert np.isfinite(float(loss)) and 0.0 <= float(accuracy) <= 1.0


def test_options_are_passed_through_and_names_are_case_insensitive():
    head = get_loss_head(" AAMSoftmax ", num_classes=10, margin=0.3, scale=20.0, easy_margin=True)
    assert (head.margin, head.scale, head.easy_margin) == (0.3, 20.0, True)
    triplet = get_loss_head("triplet", clips_per_speaker=3, mining="semihard", margin=0.5)
    assert (triplet.clips_per_speaker, triplet.mining, triplet.margin) == (3, "semihard", 0.5)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown loss 'arcface'.*aamsoftmax.*angleproto.*ge2e"):
        get_loss_head("arcface", num_classes=10)


@pytest.mark.parametrize("name", ["angleproto", "ge2e", "triplet", "softmaxproto"])
def test_metric_losses_refuse_one_clip_per_speaker(name):
    with pytest.raises(ValueError, match=r"clips_per_speaker >= 2 \(got 1\)"):
        get_loss_head(name, num_classes=10, clips_per_speaker=1)


@pytest.mark.parametrize("num_classes", [None, 1, 2.5])
def test_classification_losses_need_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes >= 2"):
        get_loss_head("amsoftmax", num_classes=num_classes)


def test_unknown_option_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="no option.*hard_rank.*options are: margin, mining"):
        get_loss_head("triplet", clips_per_speaker=2, hard_rank=3)


def test_metric_losses_ignore_num_classes():
    head = get_loss_head("ge2e", num_classes=None, clips_per_speaker=4)
    assert head.clips_per_speaker == 4
