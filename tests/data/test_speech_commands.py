"""The Speech Commands reader on real speech laid out as the dataset is.

Four WUW test speakers stand for four contributors (8-hex-digit hashes); each "says" two
keywords twice (1 s cuts of their clips, resampled to 16 kHz), next to the dataset's
``_background_noise_`` folder, a misnamed clip and the split lists.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.cli.main import main as spkid
from keras_spkid.data.catalogue import ListFormatError, read_manifest
from keras_spkid.data.speech_commands import scan_speech_commands
from keras_spkid.errors import DataError

HASHES = ["0a7c2a8d", "1b2d3e4f", "c0ffee42", "deadbeef"]
KEYWORDS = ["yes", "zero"]


@pytest.fixture(scope="module")
def tree(wuw, tmp_path_factory):
    """A Speech Commands root with 4 contributors x 2 keywords x 2 takes of real speech."""
    root = tmp_path_factory.mktemp("speech_commands")
    test = wuw.filter(split="test")
    speakers = sorted({u.speaker for u in test})[: len(HASHES)]
    for contributor, speaker in zip(HASHES, speakers):
        clips = [load_audio(test.abspath(u)) for u in test if u.speaker == speaker][:2]
        for keyword in KEYWORDS:
            (root / keyword).mkdir(exist_ok=True)
            for take, clip in enumerate(clips):
                path = root / keyword / f"{contributor}_nohash_{take}.wav"
                soundfile.write(path, clip[:SAMPLE_RATE], SAMPLE_RATE, subtype="PCM_16")
    noise = root / "_background_noise_"
    noise.mkdir()
    rng = np.random.default_rng(0)
    soundfile.write(noise / "white_noise.wav", rng.normal(0, 0.1, SAMPLE_RATE), SAMPLE_RATE)
    (root / "_silence_").mkdir()  # the test set's silence class: no speech, skipped
    soundfile.write(root / "_silence_" / "1024.wav", np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    (root / "_unknown_").mkdir()  # the test set's other words: '<word>_<hash>_nohash_<n>.wav.wav'
    os.link(
        root / "yes" / f"{HASHES[0]}_nohash_0.wav",
        root / "_unknown_" / f"backward_{HASHES[0]}_nohash_3.wav.wav",
    )
    soundfile.write(root / "yes" / "not_a_clip.wav", rng.normal(0, 0.1, 800), SAMPLE_RATE)
    (root / "README.md").write_text("Speech Commands\n")
    (root / "validation_list.txt").write_text(f"yes/{HASHES[2]}_nohash_0.wav\n")
    (root / "testing_list.txt").write_text(
        "".join(f"{k}/{HASHES[3]}_nohash_{t}.wav\n" for k in KEYWORDS for t in range(2))
    )
    return root


def test_contributors_are_speakers_and_the_lists_are_splits(tree):
    catalogue = scan_speech_commands(tree)
    assert sorted(catalogue.speakers) == HASHES
    # noise, silence and the misnamed file out; the _unknown_ word in
    assert len(catalogue) == len(HASHES) * len(KEYWORDS) * 2 + 1
    assert not [u for u in catalogue if u.path.startswith(("_background_noise_", "_silence_"))]
    unknown = [u for u in catalogue if u.path.startswith("_unknown_/")]
    assert [u.speaker for u in unknown] == [HASHES[0]] and unknown[0].split == "train"
    by_path = {u.path: u for u in catalogue}
    assert by_path[f"yes/{HASHES[2]}_nohash_0.wav"].split == "dev"
    assert {by_path[f"{k}/{HASHES[3]}_nohash_{t}.wav"].split for k in KEYWORDS for t in (0, 1)} == {
        "test"
    }
    assert by_path[f"zero/{HASHES[0]}_nohash_1.wav"].split == "train"
    assert all(u.recording == u.speaker for u in catalogue)  # one device per contributor
    x = load_audio(catalogue.abspath(by_path[f"zero/{HASHES[1]}_nohash_0.wav"]))
    assert x.size == SAMPLE_RATE and np.abs(x).max() > 0.01  # real speech, read back


def test_without_split_lists_nothing_is_labelled(tree, tmp_path):
    root = tmp_path / "test_set_only"
    (root / "yes").mkdir(parents=True)
    for path in (tree / "yes").glob("*_nohash_*.wav"):
        os.link(path, root / "yes" / path.name)
    catalogue = scan_speech_commands(root)
    assert len(catalogue) == len(HASHES) * 2 and {u.split for u in catalogue} == {None}


def test_bad_trees_and_lists_are_refused(tree, tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        scan_speech_commands(tmp_path / "missing")
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(DataError, match="no Speech Commands clips"):
        scan_speech_commands(tmp_path / "empty")
    unsafe = tmp_path / "unsafe"
    (unsafe / "yes").mkdir(parents=True)
    os.link(next((tree / "yes").glob("*_nohash_*.wav")), unsafe / "yes" / "0a7c2a8d_nohash_0.wav")
    (unsafe / "testing_list.txt").write_text("../../etc/passwd\n")
    with pytest.raises(ListFormatError, match="testing_list.txt"):
        scan_speech_commands(unsafe)
    (unsafe / "testing_list.txt").write_bytes(b"yes/0a7c2a8d_nohash_0.wav\n\xff\xfe\n")
    with pytest.raises(DataError, match=r"testing_list.txt:2: the split list is not UTF-8"):
        scan_speech_commands(unsafe)
    escape = tmp_path / "escape"
    (escape / "yes").mkdir(parents=True)
    (escape / "yes" / "deadbeef_nohash_0.wav").symlink_to(tree / "yes" / "not_a_clip.wav")
    with pytest.raises(DataError, match="leads outside the data root"):
        scan_speech_commands(escape)


def test_spkid_catalogue_reads_it(tree, tmp_path, capsys):
    manifest = tmp_path / "MANIFEST.tsv"
    assert spkid(["catalogue", "--speech-commands", str(tree), "--output", str(manifest)]) == 0
    written = read_manifest(manifest, tree)
    assert sorted(written.speakers) == HASHES and len(written) == 17
    assert {u.split for u in written} == {"train", "dev", "test"}


def test_calibration_parts_are_disjoint_thirds_fixed_by_the_contributor():
    from keras_spkid.data.speech_commands import CALIBRATION_PARTS, calibration_part

    rng = np.random.default_rng(0)
    ids = [f"{v:08x}" for v in rng.integers(0, 2**32, 900)]
    parts = [calibration_part(s) for s in ids]
    counts = {p: parts.count(p) for p in CALIBRATION_PARTS}
    assert set(parts) == set(CALIBRATION_PARTS)
    assert all(250 <= c <= 350 for c in counts.values()), counts
    # a contributor's part depends on the id alone, not on who else is in the folder
    assert [calibration_part(s) for s in reversed(ids)] == parts[::-1]
    assert calibration_part(ids[0]) == calibration_part(str(ids[0]))
