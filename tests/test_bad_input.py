"""Every entry point on one catalogue of bad files and lists, as a user would run it.

The catalogue is made here from real speech (WUW Corpus II clips, copied): a truncated
FLAC, an empty file, a text file named ``.wav``, and lists that are not UTF-8, repeat a
path, leave the data root (``..``, absolute, a symbolic link), have no ``path`` column or
a ragged row, or are a FLAC file. Each command must end with exit status 2 and one line
on stderr, ``error: ...``, naming the file, and never a traceback; files that are bad
inside a list that has good ones are skipped and listed, and the rest is processed.

``extract_embeds.py``, ``closest_celeb.py``, the demo and ``spkid features/eval/train`` import
TensorFlow (several seconds each), so those runs are marked slow; ``spkid catalogue`` runs
are quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = [sys.executable]
EXTRACT = [*PYTHON, str(REPO / "extract_embeds.py")]
CELEB = [*PYTHON, str(REPO / "closest_celeb.py")]
SPKID = [*PYTHON, "-m", "keras_spkid.cli.main"]

BAD_AUDIO = {
    "truncated.flac": "cannot decode audio",  # cut inside the FLAC header
    "empty.wav": "file is empty",
    "text.wav": "cannot decode audio",
}

BAD_LISTS = {
    # name: (what the list holds, what its one line says after the file name)
    "latin1.tsv": (b"speaker\tpath\ns1\ts1/a.flac\nj\xf6rg\ts1/b.flac\n", ":3: the "),
    "duplicate.tsv": (b"speaker\tpath\ns1\ts1/a.flac\ns2\ts2/c.flac\ns1\ts1/a.flac\n", ":4: "),
    "dotdot.tsv": (b"speaker\tpath\ns1\ts1/a.flac\nx\t../outside/x.flac\n", ":3: "),
    "absolute.tsv": (b"speaker\tpath\ns1\ts1/a.flac\nx\t/etc/passwd\n", ":3: "),
    "escape.tsv": (
        b"speaker\tpath\ns1\ts1/a.flac\nx\tleak/x.flac\n",
        ": leak/x.flac leads outside",
    ),
    "nopath.tsv": (b"speaker\tfile\ns1\ts1/a.flac\n", ":1: "),
    "ragged.tsv": (b"speaker\tpath\ns1\ts1/a.flac\ns2\ts2/c.flac\textra\n", ":3: "),
    "empty.tsv": (b"", ": "),
}
QUICK_LISTS = ("latin1.tsv", "duplicate.tsv", "escape.tsv", "ragged.tsv")


@pytest.fixture(scope="module")
def bad(tmp_path_factory, wuw):
    """The catalogue: ``data/`` (good clips of s1 and s2, bad files in s3, a link out of
    the root, the bad lists) and a clean folder tree ``tree/`` with the same clips."""
    base = tmp_path_factory.mktemp("bad_input")
    clips = [wuw.abspath(u) for u in wuw.utterances[:6]]
    data, tree, outside = base / "data", base / "tree", base / "outside"
    good = {"s1/a.flac": clips[0], "s1/b.flac": clips[1], "s2/c.flac": clips[2]}
    good["s2/d.flac"] = clips[3]
    for folder in (data, tree):
        for rel, source in good.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / rel)
        (folder / "s3").mkdir()
        flac = clips[4].read_bytes()
        (folder / "s3" / "truncated.flac").write_bytes(flac[: len(flac) // 20])
        (folder / "s3" / "empty.wav").write_bytes(b"")
        (folder / "s3" / "text.wav").write_text("this is a text file, not audio\n")
    outside.mkdir()
    shutil.copyfile(clips[5], outside / "x.flac")
    (data / "leak").symlink_to(outside)
    for name, (content, _) in BAD_LISTS.items():
        (data / name).write_bytes(content)
    (data / "flac_as_list.tsv").write_bytes(clips[0].read_bytes())
    rows = "".join(f"s3\ts3/{name}\n" for name in BAD_AUDIO)
    (data / "only_bad_audio.tsv").write_text("speaker\tpath\n" + rows)
    good_rows = "".join(f"{rel.split('/')[0]}\t{rel}\n" for rel in good)
    (data / "mixed.tsv").write_text("speaker\tpath\n" + good_rows + rows)
    return SimpleNamespace(base=base, data=data, tree=tree, good=list(good))


def _run(command, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _one_line(done, *names):
    """Exit 2 and exactly one stderr line, ``error: ...``, naming every one of ``names``."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def _list_cases(quick):
    return [
        name if name in quick else pytest.param(name, marks=pytest.mark.slow)
        for name in [*BAD_LISTS, "flac_as_list.tsv"]
    ]


def _expected(bad, name):
    said = BAD_LISTS[name][1] if name in BAD_LISTS else ":1: the "
    return f"{bad.data / name}{said}"


# ----- quick: spkid catalogue ---------------------------------------------------------
@pytest.mark.parametrize("name", _list_cases(QUICK_LISTS))
def test_catalogue_on_bad_lists(bad, name, tmp_path):
    _one_line(
        _run([*SPKID, "catalogue", "--manifest", bad.data / name], tmp_path), _expected(bad, name)
    )


def test_catalogue_of_a_folder_with_a_link_out_of_it(bad, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(bad.tree, tree)
    done = _run([*SPKID, "catalogue", "--folder", tree], tmp_path)
    assert done.returncode == 0, done.stderr  # bad audio is for later stages to list
    (tree / "s4").symlink_to(bad.base / "outside")
    _one_line(_run([*SPKID, "catalogue", "--folder", tree], tmp_path), "s4/x.flac leads outside")


# ----- slow: every other entry point --------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", [*BAD_LISTS, "flac_as_list.tsv"])
def test_extract_embeds_on_bad_lists(bad, name, tmp_path):
    out = tmp_path / "out.npz"
    done = _run([*EXTRACT, "--manifest", bad.data / name, "--output", out, "--quiet"], tmp_path)
    _one_line(done, _expected(bad, name))
    assert not list(tmp_path.iterdir())  # nothing written, no parts left


@pytest.mark.slow
@pytest.mark.parametrize("name", ["latin1.tsv", "duplicate.tsv", "escape.tsv"])
@pytest.mark.parametrize(
    "command",
    [
        ["features", "--cache", "{tmp}/cache", "--manifest"],
        ["eval", "fewshot", "--out", "{tmp}/eval", "--manifest"],
        ["train-protonet", "--log_dir", "{tmp}/run", "--cache", "{tmp}/cache", "--train_corpora"],
    ],
    ids=["features", "eval-fewshot", "train-protonet"],
)
def test_spkid_commands_on_bad_lists(bad, name, command, tmp_path):
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    _one_line(_run([*SPKID, *command, bad.data / name], tmp_path), _expected(bad, name))


@pytest.mark.slow
def test_extract_embeds_where_every_file_is_bad(bad, tmp_path):
    out = tmp_path / "out.npz"
    listing = bad.data / "only_bad_audio.tsv"
    conv6 = ["--model", "conv6"]  # loads in a second; the bad files are what is tested
    done = _run([*EXTRACT, *conv6, "--manifest", listing, "--output", out, "--quiet"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    failures = tmp_path / "out.failures.tsv"
    assert lines[-1] == (
        f"error: {out}: none of the 3 files could be embedded; reasons in {failures}"
    )
    for name, reason in BAD_AUDIO.items():  # one warning line per file, naming it
        assert sum(f"s3/{name}: {reason}" in line for line in lines[:-1]) == 1, done.stderr
    assert len(failures.read_text().splitlines()) == 1 + len(BAD_AUDIO)
    assert not out.exists() and not (tmp_path / "out.npz.parts").exists()


@pytest.mark.slow
def test_extract_embeds_skips_and_lists_bad_files_among_good_ones(bad, tmp_path):
    out = tmp_path / "out.npz"
    conv6 = ["--model", "conv6"]  # starts in seconds; the bad files are what is tested
    for source in (["--manifest", bad.data / "mixed.tsv"], ["--input", bad.tree]):
        done = _run([*EXTRACT, *conv6, *source, "--output", out, "--quiet"], tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        with np.load(out) as result:
            assert result["paths"].tolist() == bad.good
        listed = (tmp_path / "out.failures.tsv").read_text().splitlines()[1:]
        assert sorted(line.split("\t")[0] for line in listed) == sorted(
            f"s3/{name}" for name in BAD_AUDIO
        )


@pytest.mark.slow
def test_closest_celeb_query_on_bad_audio_and_a_broken_gallery(bad, tmp_path):
    from keras_spkid.app.galleries import DEFAULT_CELEBRITIES

    # one run for the three bad clips (each run loads the default CAM++): one line each
    clips = [bad.tree / "s3" / name for name in BAD_AUDIO]
    done = _run([*CELEB, "query", "--gallery", DEFAULT_CELEBRITIES, "--audio", *clips], tmp_path)
    assert "Traceback" not in done.stderr and done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == len(clips), done.stderr
    for line, clip in zip(lines, clips):
        assert line.startswith(f"error: {clip}: {BAD_AUDIO[clip.name]}"), line
    assert done.stdout == ""
    with np.load(DEFAULT_CELEBRITIES) as data:
        fields = {k: data[k] for k in data.files}
    broken = tmp_path / "gallery.npz"
    np.savez(broken, **dict(fields, names=fields["names"][:-1]))
    clip = bad.tree / "s1" / "a.flac"
    done = _run([*CELEB, "query", "--gallery", broken, "--audio", clip], tmp_path)
    _one_line(done, f"{broken}: not a usable gallery")
    text = tmp_path / "gallery.txt.npz"
    text.write_text("not a gallery")
    done = _run([*CELEB, "query", "--gallery", text, "--audio", clip], tmp_path)
    _one_line(done, f"{text}: cannot read the gallery")


@pytest.mark.slow
def test_features_list_the_bad_files_and_cache_the_rest(bad, tmp_path):
    done = _run([*SPKID, "features", "--folder", bad.tree, "--cache", tmp_path / "c"], tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "cached 4 utterances" in done.stdout and "3 failures" in done.stdout, done.stdout


@pytest.mark.slow
def test_demo_with_a_broken_gallery_file_stops_with_one_line(tmp_path):
    from keras_spkid.app.galleries import DEFAULT_CELEBRITIES

    with np.load(DEFAULT_CELEBRITIES) as data:
        fields = {k: data[k] for k in data.files}
    prototypes = fields["prototypes"].copy()
    prototypes[2, 0] = np.nan
    broken = tmp_path / "people.npz"
    np.savez(broken, **dict(fields, prototypes=prototypes))
    demo = [*PYTHON, REPO / "apps" / "gradio_demo.py", "--gallery", broken, "--port", "7999"]
    _one_line(_run(demo, tmp_path, timeout=300), f"{broken}: not a usable gallery: the prototype")
