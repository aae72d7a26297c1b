"""Catalogues from the real manifests, folder trees, and the two kinds of split."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from keras_spkid.data.catalogue import (
    Catalogue,
    Utterance,
    check_relative_path,
    infer_recording,
    read_manifest,
    scan_folder,
    write_manifest,
)
from keras_spkid.data.corpora import load_corpus
from keras_spkid.errors import DataError, ListFormatError


def test_real_manifests(shared_data):
    wuw = load_corpus("wuw_corpus_ii", shared_data)
    assert (len(wuw), len(wuw.speakers)) == (3080, 215)
    splits = {s: len(wuw.filter(split=s).speakers) for s in ("train", "dev", "test")}
    assert splits == {"train": 146, "dev": 34, "test": 35}
    assert wuw.utterances[0].recording == "n0011b1d878/00286"  # phone session
    libri = load_corpus("librispeech_1utt", shared_data)
    assert (len(libri), len(libri.speakers)) == (251, 251)
    assert libri.utterances[0].recording == "103/1240"  # book chapter
    fsdd = load_corpus("fsdd", shared_data)
    assert (len(fsdd), len(fsdd.speakers)) == (3000, 6)
    assert all(wuw.abspath(u).is_file() for u in wuw.utterances[:50])


def test_manifest_splits_are_speaker_disjoint(wuw):
    speakers = [set(wuw.filter(split=s).speakers) for s in ("train", "dev", "test")]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])


def test_speaker_disjoint_split(wuw):
    parts = wuw.speaker_disjoint_split({"train": 0.8, "test": 0.2}, seed=3)
    train, test = set(parts["train"].speakers), set(parts["test"].speakers)
    assert not train & test
    assert len(train) + len(test) == 215 and len(test) == 43
    assert len(parts["train"]) + len(parts["test"]) == len(wuw)
    again = wuw.speaker_disjoint_split({"train": 0.8, "test": 0.2}, seed=3)
    assert again["test"].speakers == parts["test"].speakers
    other = wuw.speaker_disjoint_split({"train": 0.8, "test": 0.2}, seed=4)
    assert other["test"].speakers != parts["test"].speakers


def test_recording_disjoint_split(wuw, caplog):
    parts = wuw.recording_disjoint_split({"train": 0.5, "test": 0.5}, seed=0)
    train_recs = {u.recording for u in parts["train"]}
    test_recs = {u.recording for u in parts["test"]}
    assert not train_recs & test_recs
    # The 36 speakers who called more than once appear on both sides.
    both = set(parts["train"].speakers) & set(parts["test"].speakers)
    multi = {s for s, utts in wuw.by_speaker().items() if len({u.recording for u in utts}) > 1}
    assert both == multi and len(multi) == 36
    assert "single recording" in caplog.text


def test_bad_fractions(wuw):
    with pytest.raises(DataError, match="sum to 1"):
        wuw.speaker_disjoint_split({"train": 0.8, "test": 0.1})


def test_infer_recording_conventions():
    assert infer_recording("id10270", "id10270/x6uYqmx31kE/00001.wav") == "id10270/x6uYqmx31kE"
    assert infer_recording("103", "103/103-1240-0000.flac") == "103/1240"
    assert infer_recording("n0011b1d878", "n0011b1d878/00286_001.flac") == "n0011b1d878/00286"
    assert infer_recording("george", "george/0_george_0.flac") == "george/0_george_0"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../secret.wav", "a/../../b.wav", "C:/x.wav", ""])
def test_untrusted_paths_are_rejected(bad):
    with pytest.raises(ListFormatError, match="list.txt:7"):
        check_relative_path(bad, "list.txt", 7)


def test_manifest_errors_name_file_and_line(tmp_path):
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("speaker\tpath\tseconds\nalice\talice/a.wav\t1.0\nbob\tbob/b.wav\n")
    with pytest.raises(ListFormatError, match=r"MANIFEST.tsv:3: malformed line .*expected 3"):
        read_manifest(manifest)
    manifest.write_text("speaker\tpath\nalice\t../../etc/passwd\n")
    with pytest.raises(ListFormatError, match="MANIFEST.tsv:2"):
        read_manifest(manifest)
    manifest.write_text("who\twhere\nalice\ta.wav\n")
    with pytest.raises(ListFormatError, match="MANIFEST.tsv:1.*header"):
        read_manifest(manifest)
    manifest.write_text("")
    with pytest.raises(DataError, match="manifest is empty"):
        read_manifest(manifest)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "missing.tsv")


def test_folder_tree_and_manifest_round_trip(tmp_path):
    for rel in [
        "alice/one.wav",
        "alice/sub/two.flac",
        "bob/x.wav",
        ".hidden/y.wav",
        "bob/notes.txt",
    ]:
        path = tmp_path / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith((".wav", ".flac")):
            soundfile.write(path, np.zeros(160, np.float32), 16000)
        else:
            path.write_text("x")
    catalogue = scan_folder(tmp_path / "data")
    assert [u.path for u in catalogue] == ["alice/one.wav", "alice/sub/two.flac", "bob/x.wav"]
    assert catalogue.speakers == ["alice", "bob"]
    write_manifest(catalogue, tmp_path / "data" / "MANIFEST.tsv")
    again = read_manifest(tmp_path / "data" / "MANIFEST.tsv")
    assert again.utterances == catalogue.utterances
    with pytest.raises(DataError, match="no audio files"):
        scan_folder(_empty(tmp_path))


def _empty(tmp_path):
    empty = tmp_path / "empty" / "carol"
    empty.mkdir(parents=True)
    return empty.parent


def test_filter_by_speakers():
    catalogue = Catalogue(".", [Utterance("a/1.wav", "a", "a/1"), Utterance("b/1.wav", "b", "b/1")])
    assert [u.speaker for u in catalogue.filter(speakers=["b"])] == ["b"]


def test_manifest_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    from keras_spkid.data.catalogue import read_path_list

    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("speaker\tpath\nalice\talice/a.wav\n", encoding="utf-8-sig")
    assert [u.speaker for u in read_manifest(manifest)] == ["alice"]
    paths, speakers = read_path_list(manifest)
    assert paths == ["alice/a.wav"] and speakers == ["alice"]  # speakers were dropped


def test_quotes_are_ordinary_characters(tmp_path):
    from keras_spkid.data.catalogue import read_path_list

    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text('speaker\tpath\n"alice\talice/a.wav\nbob\tbob/b.wav\ncarol\tcarol/c.wav\n')
    catalogue = read_manifest(manifest)
    assert [u.speaker for u in catalogue] == ['"alice', "bob", "carol"]  # were 2 merged rows
    assert len(read_path_list(manifest)[0]) == 3


def test_duplicate_paths_are_rejected(tmp_path):
    from keras_spkid.data.catalogue import read_path_list

    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("speaker\tpath\na\ta/1.wav\nb\tb/2.wav\na\t./a/1.wav\n")
    with pytest.raises(ListFormatError, match=r"MANIFEST.tsv:4: .*not listed before \(line 2\)"):
        read_manifest(manifest)
    with pytest.raises(ListFormatError, match=r"MANIFEST.tsv:4: .*not listed before \(line 2\)"):
        read_path_list(manifest)


def test_non_utf8_lists_name_the_file_and_line(tmp_path):
    from keras_spkid.data.catalogue import read_path_list

    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_bytes("speaker\tpath\nalice\talice/a.wav\nj\xf6rg\tj/b.wav\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"MANIFEST.tsv:3: the manifest is not UTF-8 .*0xf6"):
        read_manifest(manifest)
    with pytest.raises(DataError, match=r"MANIFEST.tsv:3: the list is not UTF-8"):
        read_path_list(manifest)


def test_symbolic_links_out_of_the_root_are_rejected(tmp_path):
    from keras_spkid.data.voxceleb import read_train_list

    outside = tmp_path / "secret"
    outside.mkdir()
    soundfile.write(outside / "x.wav", np.zeros(160, np.float32), 16000)
    root = tmp_path / "data"
    (root / "alice" / "v1").mkdir(parents=True)
    soundfile.write(root / "alice" / "v1" / "ok.wav", np.zeros(160, np.float32), 16000)
    (root / "alice" / "v1" / "link.wav").symlink_to(outside / "x.wav")
    (root / "mallory").symlink_to(outside)  # a whole speaker folder elsewhere
    (root / "alice" / "v1" / "inside.wav").symlink_to(root / "alice" / "v1" / "ok.wav")
    manifest = root / "MANIFEST.tsv"
    manifest.write_text("speaker\tpath\nalice\talice/v1/ok.wav\nalice\talice/v1/inside.wav\n")
    assert len(read_manifest(manifest)) == 2  # links that stay inside are fine
    for rel in ("alice/v1/link.wav", "mallory/x.wav"):
        manifest.write_text(f"speaker\tpath\nalice\talice/v1/ok.wav\nm\t{rel}\n")
        with pytest.raises(DataError, match=f"MANIFEST.tsv: {rel} leads outside the data root"):
            read_manifest(manifest)
    with pytest.raises(DataError, match="leads outside the data root"):
        scan_folder(root)
    train = tmp_path / "train_list.txt"
    train.write_text("alice alice/v1/ok.wav\nalice alice/v1/link.wav\n")
    with pytest.raises(DataError, match="train_list.txt: alice/v1/link.wav leads outside"):
        read_train_list(train, root)
    train.write_text("alice alice/v1/ok.wav\nalice alice/v1/ok.wav\n")
    with pytest.raises(ListFormatError, match=r"train_list.txt:2: .*not listed before"):
        read_train_list(train, root)
