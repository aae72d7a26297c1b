"""Tests of the VoxCeleb readers, on the real metadata and on a generated VoxCeleb tree."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import soundfile as sf

from keras_spkid.data.voxceleb import (
    FRAME_RATE,
    UNKNOWN_LABEL,
    display_name,
    parse_timestamp_txt,
    read_iden_split,
    read_identities,
    read_timestamp_tree,
    read_train_list,
    read_trials,
    scan_voxceleb,
)
from keras_spkid.errors import DataError, ListFormatError
from tests.fixtures.voxceleb_tree import SAMPLE_RATE, make_voxceleb_tree, read_durations


@pytest.fixture(scope="module")
def tree(voxceleb_meta, tmp_path_factory):
    """A generated VoxCeleb1-test-like tree built from the real test durations."""
    return make_voxceleb_tree(
        voxceleb_meta / "vox1_tst_duration.txt.gz", tmp_path_factory.mktemp("voxceleb")
    )


def _write(path, text: str):
    path.write_text(text)
    return path


# ------------------------------------------------------------------ real metadata


def test_real_veri_test_has_37720_balanced_trials(voxceleb_meta):
    trials = read_trials(voxceleb_meta / "veri_test.txt")
    assert len(trials) == 37720
    assert trials.labels.dtype == np.int8
    assert np.count_nonzero(trials.labels == 1) == 18860
    assert np.count_nonzero(trials.labels == 0) == 18860
    assert (trials.enrol[0], trials.test[0]) == (
        "id10270/x6uYqmx31kE/00001.wav",
        "id10270/8jEAjG6SegY/00008.wav",
    )
    assert trials.labels[:2].tolist() == [1, 0]
    same_speaker = np.array(
        [e.split("/")[0] == t.split("/")[0] for e, t in zip(trials.enrol, trials.test)]
    )
    np.testing.assert_array_equal(same_speaker, trials.labels == 1)
    paths = trials.utterance_paths()
    assert len(paths) == 4715 and paths == sorted(set(paths))
    test_durations = {p for p, _ in read_durations(voxceleb_meta / "vox1_tst_duration.txt.gz")}
    assert {p.removesuffix(".wav") for p in paths} <= test_durations


def test_real_identities(voxceleb_meta):
    identities = read_identities(voxceleb_meta / "vox1_identities.txt")
    assert len(identities) == 1251
    assert identities["id10001"] == "A.J._Buckley"
    assert display_name(identities["id10001"]) == "A.J. Buckley"
    assert list(identities)[0] == "id10001" and list(identities)[-1] == "id11251"


def test_real_durations(voxceleb_meta):
    dev = read_durations(voxceleb_meta / "vox1_dev_duration.txt.gz")
    test = read_durations(voxceleb_meta / "vox1_tst_duration.txt.gz")
    assert (len(dev), len(test)) == (148642, 4874)
    assert dev[0] == ("id10092/LbVIZMrQGmQ/00001", pytest.approx(17.680062))
    test_speakers = {p.split("/")[0] for p, _ in test}
    assert len(test_speakers) == 40
    assert test_speakers.isdisjoint(p.split("/")[0] for p, _ in dev)
    assert min(s for _, s in test) > 3.9


def test_generated_audio_is_16k_mono_int16_and_speaker_specific(tree):
    spectra, speakers = [], []
    for utt in tree.utterances:
        audio, rate = sf.read(tree.wav_root / utt.path, dtype="int16")
        info = sf.info(tree.wav_root / utt.path)
        assert (rate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        assert len(audio) == round(utt.seconds * SAMPLE_RATE) and utt.seconds <= 3.0
        frames = audio[: len(audio) // 512 * 512].reshape(-1, 512).astype(np.float64)
        spectrum = np.log(np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)).mean(0) + 1e-3)
        spectra.append(spectrum - spectrum.mean())
        speakers.append(utt.speaker)
    spectra = np.array(spectra)
    distances = np.linalg.norm(spectra[:, None] - spectra[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert [speakers[i] for i in nearest] == speakers


def test_both_timestamp_dialects_parse_to_the_same_frames(tree):
    for utt in tree.utterances:
        relative_txt = utt.path.removesuffix(".wav") + ".txt"
        vox1 = parse_timestamp_txt(tree.vox1_txt_root / "txt" / relative_txt)
        vox2 = parse_timestamp_txt(tree.vox2_txt_root / "txt" / relative_txt)
        assert "\t(1)" in (tree.vox2_txt_root / "txt" / relative_txt).read_text()
        np.testing.assert_array_equal(vox1.frames, vox2.frames)
        assert vox1.frames.dtype == np.int64
        for field in ("identity", "reference", "offset", "fv_conf", "asd_conf"):
            assert getattr(vox1, field) == getattr(vox2, field)
        first = tree.first_frames[utt.path]
        n_frames = round(utt.seconds * FRAME_RATE)
        np.testing.assert_array_equal(vox1.frames, np.arange(first, first + n_frames))
        assert vox1.start_seconds == pytest.approx(first / 25)
        assert vox1.end_seconds == pytest.approx((first + n_frames) / 25)
        assert vox1.end_seconds - vox1.start_seconds == pytest.approx(utt.seconds, abs=1 / 25)


def test_timestamp_tree_matches_the_generated_clips(tree):
    for root in (tree.vox1_txt_root, tree.vox1_txt_root / "txt", tree.vox2_txt_root):
        entries = read_timestamp_tree(root)
        assert [e.wav_path for e in entries] == [u.path for u in tree.utterances]
        for entry, utt in zip(entries, tree.utterances):
            assert f"{entry.speaker}/{entry.youtube_id}" == utt.recording
            assert entry.speaker == entry.timestamps.identity == utt.speaker
            assert entry.youtube_id == entry.timestamps.reference
            assert entry.utterance == utt.path.split("/")[-1].removesuffix(".wav")
            assert entry.timestamps.frames[0] == tree.first_frames[utt.path]


def test_lists_and_scan_agree_with_the_generated_tree(tree):
    scanned = scan_voxceleb(tree.wav_root.parent)
    assert scanned.root == tree.wav_root
    assert [(u.path, u.speaker, u.recording) for u in scanned] == [
        (u.path, u.speaker, u.recording) for u in tree.utterances
    ]
    assert [u.path for u in scan_voxceleb(tree.wav_root)] == [u.path for u in scanned]

    train = read_train_list(tree.train_list, tree.wav_root)
    assert [(u.path, u.speaker, u.recording) for u in train] == [
        (u.path, u.speaker, u.recording) for u in scanned
    ]
    assert all(train.abspath(u).is_file() for u in train)

    parts = read_iden_split(tree.iden_split, tree.wav_root)
    assert list(parts) == ["train", "val", "test"]
    assert all(len(part) > 0 for part in parts.values())
    from_split = sorted((u for part in parts.values() for u in part), key=lambda u: u.path)
    assert [(u.path, u.speaker, u.recording, u.split) for u in from_split] == [
        (u.path, u.speaker, u.recording, u.split) for u in tree.utterances
    ]
    assert all(u.split == name for name, part in parts.items() for u in part)
    test_recordings = {u.recording for u in parts["test"]}
    assert test_recordings.isdisjoint(u.recording for u in parts["train"])


def test_generated_trials_read_back(tree):
    text = tree.trials.read_text()
    assert not text.endswith("\n")
    trials = read_trials(tree.trials)
    assert len(trials) == text.count("\n") + 1
    assert set(trials.labels.tolist()) == {0, 1}
    on_disk = {u.path for u in tree.utterances}
    assert set(trials.utterance_paths()) <= on_disk
    speaker = {u.path: u.speaker for u in tree.utterances}
    for label, enrol, test in zip(trials.labels, trials.enrol, trials.test):
        assert (speaker[enrol] == speaker[test]) == (label == 1)


def test_scan_reads_the_aac_layout_and_prefers_wav(tmp_path):
    for rel in ("id00012/21Uxsk56VDQ/00001.m4a", "id00012/21Uxsk56VDQ/00002.m4a"):
        (tmp_path / "aac" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "aac" / rel).write_bytes(b"")
    aac = scan_voxceleb(tmp_path)
    assert aac.root == tmp_path / "aac"
    assert [u.path for u in aac] == [
        "id00012/21Uxsk56VDQ/00001.m4a",
        "id00012/21Uxsk56VDQ/00002.m4a",
    ]
    assert {u.recording for u in aac} == {"id00012/21Uxsk56VDQ"}
    (tmp_path / "wav" / "id00012" / "21Uxsk56VDQ").mkdir(parents=True)
    (tmp_path / "wav" / "id00012" / "21Uxsk56VDQ" / "00001.wav").write_bytes(b"")
    assert [u.path for u in scan_voxceleb(tmp_path)] == ["id00012/21Uxsk56VDQ/00001.wav"]


def test_scan_rejects_files_outside_the_voxceleb_depth(tmp_path):
    (tmp_path / "wav" / "id00012").mkdir(parents=True)
    (tmp_path / "wav" / "id00012" / "00001.wav").write_bytes(b"")
    with pytest.raises(DataError, match="00001.wav"):
        scan_voxceleb(tmp_path)
    with pytest.raises(DataError, match="no wav/ or aac/"):
        scan_voxceleb(tmp_path / "wav" / "id00012")


# ----------------------------------------------------------------- list formats


def test_trials_two_column_lines_blank_lines_and_no_final_newline(tmp_path):
    path = _write(
        tmp_path / "list.txt",
        "a/b/1.wav a/c/2.wav\n\n  \nb/d/1.wav\ta/b/1.wav\n1 a/b/1.wav a/c/2.wav",
    )
    trials = read_trials(path)
    assert trials.labels.tolist() == [UNKNOWN_LABEL, UNKNOWN_LABEL, 1]
    assert trials.enrol == ["a/b/1.wav", "b/d/1.wav", "a/b/1.wav"]
    assert trials.test == ["a/c/2.wav", "a/b/1.wav", "a/c/2.wav"]
    assert trials.utterance_paths() == ["a/b/1.wav", "a/c/2.wav", "b/d/1.wav"]


def test_malformed_trial_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "veri_bad.txt", "1 a/b/1.wav a/c/2.wav\n\n1 a/b/1.wav\n")
    with pytest.raises(ListFormatError) as caught:
        read_trials(path)
    assert "veri_bad.txt:3:" in str(caught.value)
    assert caught.value.line_number == 3 and caught.value.line == "1 a/b/1.wav"


@pytest.mark.parametrize("label", ["2", "-1", "1.0", "yes"])
def test_trial_labels_must_be_0_or_1(tmp_path, label):
    path = _write(tmp_path / "t.txt", f"0 a/b/1.wav a/c/2.wav\n{label} a/b/1.wav a/c/2.wav")
    with pytest.raises(ListFormatError, match=r"t\.txt:2:.*label 0 or 1"):
        read_trials(path)


@pytest.mark.parametrize("bad", ["/etc/passwd", "id1/../../x.wav", "..", "C:/x/y.wav"])
def test_unsafe_paths_are_rejected_everywhere(tmp_path, bad):
    cases = [
        (read_trials, f"1 id1/a/1.wav {bad}\n"),
        (read_trials, f"{bad} id1/a/1.wav\n"),
        (lambda p: read_iden_split(p, tmp_path), f"1 {bad}\n"),
        (lambda p: read_train_list(p, tmp_path), f"id1 {bad}\n"),
    ]
    for reader, text in cases:
        path = _write(tmp_path / "list.txt", text)
        with pytest.raises(ListFormatError) as caught:
            reader(path)
        assert caught.value.line_number == 1 and "list.txt:1:" in str(caught.value)


def test_iden_split_rejects_unknown_sets_and_short_paths(tmp_path):
    path = _write(tmp_path / "iden.txt", "1 id1/a/00001.wav\n4 id1/a/00002.wav\n")
    with pytest.raises(ListFormatError, match=r"iden\.txt:2:"):
        read_iden_split(path, tmp_path)
    path = _write(tmp_path / "iden.txt", "1 id1/00001.wav\n")
    with pytest.raises(ListFormatError, match=r"iden\.txt:1:.*<speaker>/<youtube_id>"):
        read_iden_split(path, tmp_path)


def test_train_list_takes_the_speaker_from_the_first_column(tmp_path):
    path = _write(
        tmp_path / "train_list.txt",
        "id00012 id00012/21Uxsk56VDQ/00001.wav\nid00000 id00000/youtube_key/12345.wav\n",
    )
    catalogue = read_train_list(path, tmp_path / "wav")
    assert catalogue.speakers == ["id00000", "id00012"]
    assert [u.recording for u in catalogue] == ["id00012/21Uxsk56VDQ", "id00000/youtube_key"]
    assert catalogue.abspath(catalogue.utterances[0]) == (
        tmp_path / "wav" / "id00012/21Uxsk56VDQ/00001.wav"
    )
    _write(path, "id00012 id00012/21Uxsk56VDQ/00001.wav extra\n")
    with pytest.raises(ListFormatError, match=r"train_list\.txt:1:"):
        read_train_list(path, tmp_path)


def test_lists_read_gzip_and_plain_alike(tmp_path):
    text = "id10001 A.J._Buckley\nid10002 Aaron_Tveit\n"
    plain = _write(tmp_path / "ids.txt", text)
    zipped = tmp_path / "ids.txt.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    expected = {"id10001": "A.J._Buckley", "id10002": "Aaron_Tveit"}
    assert read_identities(plain) == read_identities(zipped) == expected
    zipped.write_bytes(gzip.compress(text.encode())[:-8])
    with pytest.raises(DataError, match=r"ids\.txt\.gz: corrupt gzip"):
        read_identities(zipped)


def test_the_tree_reads_duration_tables_gzip_and_plain_alike(tmp_path):
    text = "id10092/LbVIZMrQGmQ/00001 17.680062\nid10092/LbVIZMrQGmQ/00002 9.200062\n"
    plain = _write(tmp_path / "d.txt", text)
    zipped = tmp_path / "d.txt.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    assert (
        read_durations(plain)
        == read_durations(zipped)
        == [
            ("id10092/LbVIZMrQGmQ/00001", 17.680062),
            ("id10092/LbVIZMrQGmQ/00002", 9.200062),
        ]
    )
    _write(plain, text + "id10092/LbVIZMrQGmQ/00003 -1\n")
    with pytest.raises(ValueError, match=r"d\.txt:3:"):
        read_durations(plain)


def test_identities_reject_repeats_and_extra_fields(tmp_path):
    path = _write(tmp_path / "ids.txt", "id10001 A.J._Buckley\nid10001 Someone_Else\n")
    with pytest.raises(ListFormatError, match=r"ids\.txt:2:.*not listed before"):
        read_identities(path)
    _write(path, "id10001 A.J. Buckley\n")
    with pytest.raises(ListFormatError, match=r"ids\.txt:1:"):
        read_identities(path)


def test_missing_and_empty_files_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_trials(tmp_path / "absent.txt")
    with pytest.raises(DataError, match="no trials"):
        read_trials(_write(tmp_path / "empty.txt", "\n\n"))
    with pytest.raises(DataError, match="no timestamp files"):
        read_timestamp_tree(tmp_path)


# ---------------------------------------------------------------- timestamp files


def _first_txt(tree, dialect_root):
    utt = tree.utterances[0]
    return dialect_root / "txt" / (utt.path.removesuffix(".wav") + ".txt")


def test_truncated_timestamp_files_name_the_line(tree, tmp_path):
    lines = _first_txt(tree, tree.vox1_txt_root).read_text().splitlines()
    path = tmp_path / "00001.txt"

    _write(path, "\n".join(lines[:10]) + "\n" + lines[10][:8])  # cut inside row 4
    with pytest.raises(ListFormatError) as caught:
        parse_timestamp_txt(path)
    assert caught.value.line_number == 11 and "00001.txt:11:" in str(caught.value)

    _write(path, "\n".join(lines[:3]) + "\n")  # cut after "Offset"
    with pytest.raises(ListFormatError, match=r"00001\.txt:4:.*FV Conf.*ends early"):
        parse_timestamp_txt(path)

    _write(path, "\n".join(lines[:7]) + "\n")  # header only, no frame rows
    with pytest.raises(ListFormatError, match=r"00001\.txt:8:.*no frame rows"):
        parse_timestamp_txt(path)

    _write(path, "")
    with pytest.raises(ListFormatError, match=r"00001\.txt:1:.*Identity"):
        parse_timestamp_txt(path)


@pytest.mark.parametrize(
    "line_index, replacement",
    [
        (3, "FV Conf   : \t20.230\t(x)"),  # not a "(n)" index
        (3, "FV Conf   : \tabc\t(1)"),
        (2, "Offset    : \t2.5"),
        (0, "Identity  : \t../id10280"),
        (1, "Reference : \ta b"),
        (4, "Confidence: \t2.765"),
        (6, "FRAME \tX \tY \tW "),
        (8, "000349 \t0.319 \t0.067 \t0.424 \tnan "),
        (8, "\x00\x9f\xff garbage \xfe"),
        (9, "000001 \t0.319 \t0.067 \t0.424 \t0.753 "),  # frame goes backwards
    ],
)
def test_vox2_timestamp_garbage_names_the_line(tree, tmp_path, line_index, replacement):
    lines = _first_txt(tree, tree.vox2_txt_root).read_text().splitlines()
    lines[line_index] = replacement
    path = tmp_path / "garbage.txt"
    _write(path, "\n".join(lines) + "\n")
    with pytest.raises(ListFormatError) as caught:
        parse_timestamp_txt(path)
    assert caught.value.line_number == line_index + 1
    assert f"garbage.txt:{line_index + 1}:" in str(caught.value)


def test_timestamp_file_with_binary_garbage_is_a_format_error(tree, tmp_path):
    source = _first_txt(tree, tree.vox2_txt_root).read_bytes()
    path = tmp_path / "binary.txt"
    path.write_bytes(source[:60] + bytes(range(128, 256)) + source[60:])
    with pytest.raises(ListFormatError, match=r"binary\.txt:\d+:"):
        parse_timestamp_txt(path)


def test_timestamp_tree_rejects_a_bad_file_inside(tree, tmp_path):
    copy = tmp_path / "vox1_test_txt"
    shutil.copytree(tree.vox1_txt_root, copy)
    victim = copy / "txt" / (tree.utterances[-1].path.removesuffix(".wav") + ".txt")
    victim.write_text(victim.read_text().replace("ASD Conf", "ASD"))
    with pytest.raises(ListFormatError, match=victim.name):
        read_timestamp_tree(copy)


@pytest.mark.parametrize("bad_name", ["id 10280", "id10280\\..\\x"])
def test_timestamp_tree_rejects_unusable_folder_names(tree, tmp_path, bad_name):
    source = _first_txt(tree, tree.vox1_txt_root)
    target = tmp_path / "txt" / bad_name / "9AtE4C309P8" / "00001.txt"
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    with pytest.raises(ListFormatError, match="one path component"):
        read_timestamp_tree(tmp_path)
