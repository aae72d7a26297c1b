"""Classifier and metric-learning training of the self-attention CNN on real speech."""

from __future__ import annotations

import pytest

from keras_spkid.errors import SpkidError
from keras_spkid.training.classifier import ClassifierConfig, train_classifier


def _config(tiny_corpus, cache_dir, log_dir, **overrides):
    base = dict(encoder="sacnn", loss="softmax", speakers_per_batch=3, clips_per_speaker=2,
                frames=64, num_train_iterations=15, test_interval=15, print_interval=3,
                val_way=3, val_shot=2, val_tasks=4, learning_rate=2e-3, log_dir=str(log_dir),
                train_corpora=(str(tiny_corpus),), val_corpora=(str(tiny_corpus),),
                cache=str(cache_dir), seed=3, spec_augment=True)
    base.update(overrides)
    return ClassifierConfig(**base)


@pytest.mark.parametrize("loss", ["softmax", "aamsoftmax", "angleproto", "ge2e", "triplet"])
def test_loss_falls(tiny_corpus, cache_dir, tmp_path, loss):
    summary = train_classifier(_config(tiny_corpus, cache_dir, tmp_path / loss, loss=loss),
                               verbose=False)
    losses = [entry["loss"] for entry in summary["history"]]
    assert len(losses) == 5
    assert min(losses[-2:]) < losses[0], losses
    assert (tmp_path / loss / "best" / "model.keras").is_file()


@pytest.mark.parametrize("overrides,message", [
    (dict(loss="angleproto", clips_per_speaker=1), "needs --clips_per_speaker >= 2"),
    (dict(loss="arcface"), "--loss must be one of"),
    (dict(speakers_per_batch=4), "need 4 speakers"),
])
def test_impossible_settings(tiny_corpus, cache_dir, tmp_path, overrides, message):
    with pytest.raises(SpkidError, match=message):
        train_classifier(_config(tiny_corpus, cache_dir, tmp_path / "x", **overrides),
                         verbose=False)
    assert not (tmp_path / "x" / "checkpoints").exists()
