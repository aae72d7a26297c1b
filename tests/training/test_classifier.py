"""Classifier and metric-learning training of the self-attention CNN on real speech."""

from __future__ import annotations

import pytest

from keras_spkid.errors import SpkidError
from keras_spkid.training.classifier import ClassifierConfig, train_classifier


def _config(tiny_corpus, cache_dir, log_dir, **overrides):
    base = dict(
        encoder="sacnn",
        loss="softmax",
        speakers_per_batch=3,
        clips_per_speaker=2,
        frames=64,
        num_train_iterations=15,
        test_interval=15,
        print_interval=3,
        val_way=3,
        val_shot=2,
        val_tasks=4,
        learning_rate=2e-3,
        log_dir=str(log_dir),
        train_corpora=(str(tiny_corpus),),
        val_corpora=(str(tiny_corpus),),
        cache=str(cache_dir),
        seed=3,
        spec_augment=True,
    )
    base.update(overrides)
    return ClassifierConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["softmax", "aamsoftmax", "angleproto", "ge2e", "triplet"])
def test_loss_falls(tiny_corpus, cache_dir, tmp_path, loss):
    summary = train_classifier(
        _config(tiny_corpus, cache_dir, tmp_path / loss, loss=loss), verbose=False
    )
    losses = [entry["loss"] for entry in summary["history"]]
    assert len(losses) == 5
    assert min(losses[-2:]) < losses[0], losses
    assert (tmp_path / loss / "best" / "model.keras").is_file()


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(loss="angleproto", clips_per_speaker=1), "needs --clips_per_speaker >= 2"),
        (dict(loss="arcface"), "--loss must be one of"),
        (dict(speakers_per_batch=4), "need 4 speakers"),
    ],
)
def test_impossible_settings(tiny_corpus, cache_dir, tmp_path, overrides, message):
    with pytest.raises(SpkidError, match=message):
        train_classifier(
            _config(tiny_corpus, cache_dir, tmp_path / "x", **overrides), verbose=False
        )
    assert not (tmp_path / "x" / "checkpoints").exists()


@pytest.mark.slow
def test_closed_set_identification_on_a_voxceleb_iden_split(tmp_path, voxceleb_meta):
    """iden_split.txt -> manifest (spkid catalogue) -> sacnn trained and validated closed-set."""
    import subprocess
    import sys

    from tests.fixtures.voxceleb_tree import make_voxceleb_tree

    tree = make_voxceleb_tree(
        voxceleb_meta / "vox1_tst_duration.txt.gz",
        tmp_path / "vox",
        n_speakers=4,
        max_videos=2,
        max_utts_per_video=4,
    )
    manifest = tree.wav_root / "MANIFEST.tsv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_spkid.cli.main",
            "catalogue",
            "--iden-split",
            str(tree.iden_split),
            "--root",
            str(tree.wav_root),
            "--output",
            str(manifest),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    config = ClassifierConfig(
        encoder="sacnn",
        loss="aamsoftmax",
        speakers_per_batch=4,
        clips_per_speaker=1,
        frames=100,
        num_train_iterations=12,
        test_interval=12,
        print_interval=3,
        val_mode="closed_set",
        val_split="val",
        learning_rate=2e-3,
        train_corpora=(str(manifest),),
        cache=str(tmp_path / "cache"),
        log_dir=str(tmp_path / "run"),
        seed=0,
    )
    summary = train_classifier(config, verbose=False)
    results = summary["best"]["results"]
    assert set(results) == {"val_accuracy", "val_top5"}
    assert results["val_top5"] == 1.0  # 4 speakers: every label is in the top 5
    assert 0.0 <= results["val_accuracy"] <= 1.0


def test_closed_set_needs_a_classifying_loss(tiny_corpus, cache_dir, tmp_path):
    with pytest.raises(SpkidError, match="closed_set needs a classifying loss"):
        train_classifier(
            _config(tiny_corpus, cache_dir, tmp_path / "x", loss="ge2e", val_mode="closed_set"),
            verbose=False,
        )
