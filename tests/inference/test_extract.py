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


def test_resume_after_kill_gives_the_same_result(tmp_path, clips):
    root, rows = clips
    listing = _write_list(tmp_path / "list.tsv", rows)
    command = [
        sys.executable,
        str(REPO / "extract_embeds.py"),
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
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(parts.glob("part-*.npz")))
    assert 2 <= done_before < 6 and not out.exists(), "kill did not land half-way"
    subprocess.run(command + ["--output", str(out)], check=True, capture_output=True, timeout=300)
    a, b = EmbeddingSet.load(reference), EmbeddingSet.load(out)
    assert a.paths.tolist() == b.paths.tolist()
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-6)
    assert not parts.exists() and not list(tmp_path.rglob("*.part*"))
