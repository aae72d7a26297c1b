"""``spkid eval openset`` and ``spkid eval calibrate-openset``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_spkid.cli.main import main as spkid
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.scoring.calibration import Calibration


def _separable_set(path, num_speakers=12, clips=8, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    speakers = np.repeat([f"s{i:02d}" for i in range(num_speakers)], clips)
    x = np.repeat(centres, clips, axis=0) + 0.02 * rng.normal(size=(len(speakers), dim))
    names = [f"{s}/{i}.wav" for i, s in enumerate(speakers)]
    EmbeddingSet(names, x.astype(np.float32), speakers, None, {}).save(path)
    return path


def test_openset_report_on_stored_embeddings(tmp_path):
    embeddings = _separable_set(tmp_path / "set.npz")
    out = tmp_path / "out"
    status = spkid(
        ["eval", "openset", "--embeddings", str(embeddings), "--threshold", "0.8"]
        + ["--enrolled", "5", "20", "--clips", "1", "5", "--episodes", "30"]
        + ["--out", str(out), "--quiet"]
    )
    assert status == 0
    report = json.loads((out / "openset.json").read_text())
    rows = [r for r in report["rows"] if "note" not in r]
    assert [(r["enrolled"], r["clips"]) for r in rows] == [(5, 1), (5, 5)]
    for row in rows:  # separable speakers: all named right, no stranger named
        assert row["named_right"]["mean"] == 1.0 and row["strangers_named"]["mean"] == 0.0
        assert row["episodes"] == 30
    too_big = [r for r in report["rows"] if "note" in r]
    assert len(too_big) == 2 and "20 enrolled" in too_big[0]["note"]
    assert (out / "openset.png").stat().st_size > 10_000
    assert "strangers named" in (out / "openset.md").read_text()


@pytest.mark.slow
def test_calibrate_openset_writes_the_decision_and_the_report_uses_it(
    shared_data, tmp_path, capsys
):
    folder = tmp_path / "model"
    out = tmp_path / "out"
    status = spkid(
        ["eval", "calibrate-openset", "--corpora", "librispeech_1utt", "--save_to", str(folder)]
        + ["--model", "conv6", "--enrolled", "1", "5", "20", "--clips", "1", "--episodes", "60"]
        + ["--out", str(out), "--quiet"]
    )
    assert status == 0
    calibration = Calibration.load(folder / "calibration.json")
    decision = calibration.decision()
    assert decision.gallery_sizes == (1, 5, 20) and decision.target_far == 0.05
    assert calibration.threshold == pytest.approx(0.7532, abs=1e-3)  # the pair one is kept
    row = decision.thresholds[0]
    assert row[0] < row[1] < row[2]  # the best of more strangers scores higher
    report = json.loads((out / "calibrate_openset.json").read_text())
    assert report["chosen"] == decision.measured["chosen"]
    assert (folder / "cohort.npy").is_file() == (decision.score == "asnorm")

    status = spkid(
        ["eval", "openset", "--corpora", "librispeech_1utt", "--split", "dev"]
        + ["--model", "conv6", "--calibration", str(folder / "calibration.json")]
        + ["--enrolled", "5"]
        + ["--clips", "1", "--episodes", "60", "--out", str(out), "--quiet"]
    )
    assert status == 0
    # a calibration made for another model (64-dim cohort) with the default 192-dim CAM++
    capsys.readouterr()
    mismatch = ["eval", "openset", "--calibration", str(folder / "calibration.json")]
    assert spkid(mismatch + ["--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "64-dim" in err and "give the --model" in err, err
    rows = json.loads((out / "openset.json").read_text())["rows"]
    shipped, pair = rows
    assert shipped["decision"] == "shipped" and pair["decision"] == "pair threshold"
    # on the speakers it was calibrated on, the target holds; the pair threshold names many
    assert shipped["strangers_named"]["mean"] <= 0.07
    assert pair["strangers_named"]["mean"] > 0.2


@pytest.mark.slow
def test_calibrate_openset_on_speech_commands_contributors(wuw, tmp_path):
    """A third of the contributors join the cohort, a third calibrate, a third are held out
    and written for ``spkid eval openset --embeddings``; no voice is in two parts."""
    import hashlib

    import soundfile

    from keras_spkid.audio.io import SAMPLE_RATE, load_audio
    from keras_spkid.data.speech_commands import calibration_part

    root = tmp_path / "speech_commands"
    (root / "yes").mkdir(parents=True)
    train = wuw.filter(split="train")
    for speaker in sorted({u.speaker for u in train})[:36]:  # real voices as contributors
        contributor = hashlib.sha1(speaker.encode()).hexdigest()[:8]
        clips = [u for u in train if u.speaker == speaker][:4]
        for take, u in enumerate(clips):
            path = root / "yes" / f"{contributor}_nohash_{take}.wav"
            soundfile.write(path, load_audio(train.abspath(u))[:SAMPLE_RATE], SAMPLE_RATE)
    folder, out = tmp_path / "model", tmp_path / "out"
    status = spkid(
        ["eval", "calibrate-openset", "--corpora", "librispeech_1utt", "--save-to", str(folder)]
        + ["--speech-commands", str(root), "--model", "conv6", "--enrolled", "1", "5"]
        + ["--clips", "1", "--episodes", "40", "--out", str(out), "--quiet"]
    )
    assert status == 0
    report = json.loads((out / "calibrate_openset.json").read_text())
    corpora = {c["corpus"] for r in report["candidates"].values() for c in r["cells"]}
    assert corpora == {"librispeech_1utt", "speech_commands"}
    held_out = EmbeddingSet.load(out / "speech_commands-test.npz")
    assert len(held_out) and {calibration_part(s) for s in held_out.speakers} == {"test"}
    if (folder / "cohort.npy").is_file():  # the training readers and the cohort third
        from keras_spkid.data.corpora import corpus_split

        readers = len(corpus_split("librispeech_1utt", "train").speakers)
        contributors = {p.name.split("_")[0] for p in (root / "yes").iterdir()}
        third = sum(calibration_part(c) == "cohort" for c in contributors)
        assert np.load(folder / "cohort.npy").shape[0] == readers + third
    status = spkid(
        ["eval", "openset", "--embeddings", str(out / "speech_commands-test.npz")]
        + ["--model", "conv6", "--calibration", str(folder / "calibration.json")]
        + ["--enrolled", "5", "--clips", "1", "--episodes", "20", "--out", str(out), "--quiet"]
    )
    assert status == 0


def test_a_missing_speech_commands_folder_is_refused_before_any_embedding(
    shared_data, tmp_path, capsys
):
    out = tmp_path / "out"
    status = spkid(
        ["eval", "calibrate-openset", "--model", "conv6", "--speech-commands"]
        + [str(tmp_path / "nowhere"), "--out", str(out), "--quiet"]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "nowhere: folder not found" in err, err
    assert not out.exists()  # no corpus was embedded first
