"""extract_embeds.py on real clips: interface, failures, resume after a real kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_spkid.errors import DataError
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.inference.extract import extract_embeddings
from keras_spkid.inference.model_io import load_embedding_model

REPO = Path(__file__).resolve().parents[2]


def _write_list(path, rows, header=("path", "speaker")):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def clips(wuw):
    """24 WUW test clips of 4 speakers: (root, [(path, speaker)])."""
    by_speaker = wuw.filter(split=["test"]).by_speaker()
    rows = [(u.path, s) for s in sorted(by_speaker)[:4] for u in by_speaker[s][:6]]
    return wuw.root, rows


@pytest.mark.slow
def test_cli_interface_with_a_missing_file(tmp_path, clips):
    root, rows = clips
    listing = _write_list(tmp_path / "list.tsv", rows[:5] + [("nobody/gone.flac", "x")] + rows[5:8])
    out = tmp_path / "out.npz"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "extract_embeds.py"),
            "--manifest",
            str(listing),
            "--root",
            str(root),
            "--output",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "built-in default model" in done.stdout and "real-time factor" in done.stdout
    assert "nobody/gone.flac: file not found" in done.stderr
    with np.load(out) as data:
        assert data["paths"].tolist() == [r[0] for r in rows[:8]]
        assert data["speakers"].tolist() == [r[1] for r in rows[:8]]
        emb = data["embeddings"]
    assert emb.dtype == np.float32 and emb.shape[0] == 8
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    failures = (tmp_path / "out.failures.tsv").read_text().splitlines()
    assert failures[0] == "path\treason" and failures[1].startswith("nobody/gone.flac\t")
    assert not (tmp_path / "out.npz.parts").exists()


def test_list_without_speakers_and_bad_lists(tmp_path, clips):
    root, rows = clips
    model = load_embedding_model("conv6")  # a small model is enough
    listing = _write_list(tmp_path / "paths.tsv", [(p,) for p, _ in rows[:3]], header=("path",))
    from keras_spkid.data.catalogue import read_path_list

    paths, speakers = read_path_list(listing)
    assert speakers is None
    extract_embeddings(model, paths, root, tmp_path / "o.npz", progress=False)
    assert EmbeddingSet.load(tmp_path / "o.npz").speakers is None
    (tmp_path / "empty.tsv").write_text("path\tspeaker\n")
    with pytest.raises(DataError, match="empty.tsv: list has a header but no rows"):
        read_path_list(tmp_path / "empty.tsv")
    _write_list(tmp_path / "evil.tsv", [("../../etc/passwd", "x")])
    with pytest.raises(Exception, match="evil.tsv:2: .*no '..'"):
        read_path_list(tmp_path / "evil.tsv")
    with pytest.raises(DataError, match="none of the 1 files could be embedded"):
        extract_embeddings(model, ["missing.flac"], root, tmp_path / "none.npz", progress=False)


def test_full_and_crop_embeddings_differ_but_agree_on_speakers(tmp_path, clips):
    root, rows = clips
    model = load_embedding_model("conv6")  # a small model is enough
    paths = [p for p, _ in rows]
    full = tmp_path / "full.npz"
    extract_embeddings(model, paths, root, full, [s for _, s in rows], progress=False)
    crops = tmp_path / "crops.npz"
    extract_embeddings(
        model, paths, root, crops, [s for _, s in rows], crops=4, crop_seconds=1.0, progress=False
    )
    a, b = EmbeddingSet.load(full), EmbeddingSet.load(crops)
    assert a.info["crops"] == 0 and b.info["crops"] == 4
    same = np.einsum("ij,ij->i", a.embeddings, b.embeddings)
    assert np.all(same < 0.99999) and np.mean(same) > 0.7


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_result(tmp_path, clips):
    root, rows = clips
    listing = _write_list(tmp_path / "list.tsv", rows)
    command = [
        sys.executable,
        str(REPO / "extract_embeds.py"),
        # resuming is what is tested here (the default model runs in the test above): the
        # small conv6 starts in seconds, and 10 crops a file keep each part ~0.4 s long,
        # so the kill lands between parts with a second to spare
        "--model",
        "conv6",
        "--crops",
        "10",
        "--manifest",
        str(listing),
        "--root",
        str(root),
        "--chunk_size",
        "4",
        "--workers",
        "1",
        "--quiet",
    ]
    reference = tmp_path / "ref.npz"
    subprocess.run(
        command + ["--output", str(reference)], check=True, capture_output=True, timeout=300
    )

    out = tmp_path / "out.npz"
    process = subprocess.Popen(
        command + ["--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    parts = tmp_path / "out.npz.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.npz"))) < 2:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(parts.glob("part-*.npz")))
    assert 2 <= done_before < 6 and not out.exists(), "kill did not land half-way"
    # resumed with another --chunk_size: the parts keep theirs, nothing is lost
    resumed = subprocess.run(
        command + ["--output", str(out), "--chunk_size", "5"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "resuming with the chunk size of the interrupted run (4, not 5)" in resumed.stderr
    a, b = EmbeddingSet.load(reference), EmbeddingSet.load(out)
    assert a.paths.tolist() == b.paths.tolist()
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-6)
    assert not parts.exists() and not list(tmp_path.rglob("*.part*"))


def _leave_parts(model, paths, root, out, chunk_size):
    """A run that embeds everything but fails to write ``out`` (as on a full disk)."""
    (out / "x").mkdir(parents=True)  # a folder in the way: the final rename fails
    with pytest.raises(OSError):
        extract_embeddings(model, paths, root, out, chunk_size=chunk_size, progress=False)
    (out / "x").rmdir()
    out.rmdir()
    assert len(list((tmp := out.with_name(out.name + ".parts")).glob("part-*.npz"))) > 1
    return tmp


def test_resume_with_another_chunk_size_loses_nothing(tmp_path, clips):
    root, rows = clips
    model = load_embedding_model("conv6")
    paths = [p for p, _ in rows[:12]] + ["nobody/gone.flac"]
    out = tmp_path / "out.npz"
    _leave_parts(model, paths, root, out, chunk_size=3)
    report = extract_embeddings(model, paths, root, out, chunk_size=5, progress=False)
    result = EmbeddingSet.load(out)
    assert result.paths.tolist() == paths[:12]  # was 9 of 12, and no error
    assert report.embedded == 12 and report.failed == 1
    reference = tmp_path / "ref.npz"
    extract_embeddings(model, paths, root, reference, chunk_size=5, progress=False)
    np.testing.assert_allclose(
        result.embeddings, EmbeddingSet.load(reference).embeddings, atol=1e-6
    )
    assert not list(tmp_path.glob("*.parts"))


def test_parts_of_a_file_replaced_before_the_resume_are_not_reused(tmp_path, clips):
    """A resume kept the embedding of a file replaced since the interrupted run."""
    import shutil

    source, rows = clips
    paths = [p for p, _ in rows[:8]]
    root = tmp_path / "audio"
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, root / rel)
    model = load_embedding_model("conv6")
    out = tmp_path / "out.npz"
    _leave_parts(model, paths, root, out, chunk_size=4)
    shutil.copyfile(root / paths[7], root / paths[0])  # another speaker's clip, same name
    extract_embeddings(model, paths, root, out, chunk_size=4, progress=False)
    result = EmbeddingSet.load(out)
    assert result.paths.tolist() == paths
    np.testing.assert_allclose(result.embeddings[0], result.embeddings[7], atol=1e-5)


def test_parts_that_do_not_account_for_every_file_fail_loudly(tmp_path, clips):
    root, rows = clips
    model = load_embedding_model("conv6")
    paths = [p for p, _ in rows[:12]]
    out = tmp_path / "out.npz"
    parts = _leave_parts(model, paths, root, out, chunk_size=4)
    (parts / "part-00002.npz").unlink()
    (parts / "part-00001.npz").rename(parts / "part-00002.npz")  # a part in the wrong place
    (parts / "part-00001.npz").write_bytes((parts / "part-00000.npz").read_bytes())
    with pytest.raises(DataError, match=r"account for 4 of 12 files \(8 neither embedded"):
        extract_embeddings(model, paths, root, out, chunk_size=4, progress=False)
    assert not out.exists() and not parts.exists()


def test_a_run_where_every_file_fails_leaves_no_parts(tmp_path, clips):
    root, _ = clips
    model = load_embedding_model("conv6")
    with pytest.raises(DataError, match="none of the 2 files could be embedded"):
        extract_embeddings(model, ["a.flac", "b.flac"], root, tmp_path / "o.npz", progress=False)
    assert not (tmp_path / "o.npz.parts").exists()


def test_bad_audio_is_listed_in_failures_never_embedded(tmp_path, shared_data):
    """Issue 14: NaN, clipped, corrupt, noise-only and 0.05 s files used to be embedded
    (and then identified); opposite-phase stereo used to fail as "clip is silent"."""
    from keras_spkid.audio.io import load_audio
    from tests.fixtures.bad_audio import REASONS, make_bad_audio

    speech = load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")
    made = make_bad_audio(tmp_path / "audio", speech)
    names = sorted(made)
    model = load_embedding_model("conv6")
    report = extract_embeddings(
        model, names, tmp_path / "audio", tmp_path / "out.npz", progress=False
    )
    failures = dict(
        line.split("\t") for line in (tmp_path / "out.failures.tsv").read_text().splitlines()[1:]
    )
    assert set(failures) == set(REASONS), failures
    for name, words in REASONS.items():
        assert words in failures[name], (name, failures[name])
    result = EmbeddingSet.load(tmp_path / "out.npz")
    assert result.paths.tolist() == ["inverted_stereo.wav"] and report.embedded == 1
    plain = extract_embeddings(
        model, ["5703/5703-47198-0000.flac"], shared_data / "librispeech_1utt",
        tmp_path / "plain.npz", progress=False,
    )  # fmt: skip
    assert plain.embedded == 1
    same = float(result.embeddings[0] @ EmbeddingSet.load(tmp_path / "plain.npz").embeddings[0])
    assert same > 0.8  # the first 6 s of the same reader, one channel of it
