"""Feature cache: content, config keying, failures list, and resume after a real kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from keras_spkid.audio.frontend import KaldiFbank, LogMel
from keras_spkid.audio.io import load_audio
from keras_spkid.data.catalogue import write_manifest
from keras_spkid.data.feature_cache import FeatureCache
from keras_spkid.data.store import UtteranceStore
from keras_spkid.errors import DataError


@pytest.fixture(scope="module")
def small(wuw):
    """60 real clips of 6 WUW speakers."""
    return wuw.subset([u for s in wuw.speakers[:6] for u in wuw.by_speaker()[s][:10]])


def test_cached_features_equal_the_layer_output(tmp_path, small):
    layer = LogMel(n_mels=40)
    cache = FeatureCache(tmp_path, layer, dtype="float32", shard_size=16)
    index = cache.build(small, progress=False)
    assert index["num_utterances"] == 60 and index["num_failures"] == 0
    assert len(index["shards"]) == 4
    features = cache.load()
    utt = small.utterances[5]
    expected = layer(load_audio(small.abspath(utt))[None])[0].numpy()
    np.testing.assert_allclose(features[utt.path], expected, atol=1e-5)
    store = UtteranceStore.from_cache(cache, small)
    assert store.data.shape[1] == 40 and len(store) == 60 and store.num_speakers == 6


def test_config_keys_the_cache(tmp_path, small):
    a = FeatureCache(tmp_path, LogMel(n_mels=40))
    b = FeatureCache(tmp_path, LogMel(n_mels=64))
    c = FeatureCache(tmp_path, LogMel(n_mels=40), dtype="float32")
    same = FeatureCache(tmp_path, LogMel(n_mels=40, name="other_name"))
    assert len({a.directory, b.directory, c.directory}) == 3
    assert same.directory == a.directory
    subset = small.subset(small.utterances[:3])
    a.build(subset, progress=False)
    assert not b.is_complete
    with pytest.raises(DataError, match="incomplete; run 'spkid features'"):
        b.load()
    assert a.load()[subset.utterances[0].path].dtype == np.float16


def test_the_front_end_class_keys_the_cache(tmp_path, small):
    """KaldiFbank and LogMel caches never share a folder, and Kaldi features are what the
    layer gives (what a CAM++ fine-tune trains on)."""
    kaldi = FeatureCache(tmp_path, KaldiFbank(n_mels=40), dtype="float32")
    assert kaldi.directory != FeatureCache(tmp_path, LogMel(n_mels=40)).directory
    subset = small.subset(small.utterances[:3])
    kaldi.build(subset, progress=False)
    utt = subset.utterances[1]
    expected = KaldiFbank(n_mels=40)(load_audio(subset.abspath(utt))[None])[0].numpy()
    np.testing.assert_allclose(kaldi.load()[utt.path], expected, atol=1e-5)


def test_bad_files_go_to_the_failures_list(tmp_path, small):
    root = tmp_path / "audio"
    good = small.utterances[:4]
    for utt in good:
        (root / utt.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(small.abspath(utt), root / utt.path)
    bad_dir = root / "bad"
    bad_dir.mkdir()
    (bad_dir / "empty.flac").write_bytes(b"")
    data = small.abspath(good[0]).read_bytes()
    (bad_dir / "corrupt.flac").write_bytes(data[:4] + bytes(len(data) - 4))
    soundfile.write(bad_dir / "short.wav", 0.1 * np.ones(1600, np.float32), 16000)
    soundfile.write(bad_dir / "silent.wav", np.zeros(16000, np.float32), 16000)
    from keras_spkid.data.catalogue import Catalogue, Utterance

    bad = [
        Utterance(f"bad/{n}", "bad", f"bad/{n}")
        for n in ("empty.flac", "corrupt.flac", "short.wav", "silent.wav", "missing.wav")
    ]
    catalogue = Catalogue(root, list(good) + bad)
    cache = FeatureCache(tmp_path / "cache", LogMel(n_mels=40), shard_size=3)
    index = cache.build(catalogue, progress=False)
    assert index["num_utterances"] == 4 and index["num_failures"] == 5
    failures = cache.failures()
    assert failures["bad/empty.flac"] == "file is empty (0 bytes)"
    assert failures["bad/corrupt.flac"].startswith("cannot decode audio")
    assert failures["bad/short.wav"].startswith("too short: 0.10 s")
    assert failures["bad/silent.wav"] == "clip is silent"
    assert failures["bad/missing.wav"] == "file not found"
    assert set(cache.load()) == {u.path for u in good}


def test_non_finite_audio_is_never_cached(tmp_path, small):
    """Issue 14: a float WAV with 0.06 s of NaN (or inf) was cached as all-NaN features."""
    from keras_spkid.data.catalogue import Catalogue, Utterance
    from tests.fixtures.bad_audio import make_bad_audio

    speech = np.concatenate([load_audio(small.abspath(u)) for u in small.utterances[:4]])
    made = make_bad_audio(tmp_path / "audio", speech)
    names = ["nan.wav", "inf.wav", "inverted_stereo.wav"]
    catalogue = Catalogue(tmp_path / "audio", [Utterance(n, "x", n) for n in names])
    cache = FeatureCache(tmp_path / "cache", LogMel(n_mels=40), shard_size=3)
    index = cache.build(catalogue, progress=False)
    assert index["num_utterances"] == 1 and set(made) >= set(names)
    failures = cache.failures()
    for name in names[:2]:
        assert failures[name] == "960 samples are NaN or infinite (the first at 3.00 s)"
    features = cache.load()
    assert list(features) == ["inverted_stereo.wav"]
    assert np.isfinite(features["inverted_stereo.wav"]).all()


def _run_features(manifest, root, cache):
    return [
        sys.executable,
        "-m",
        "keras_spkid.cli.main",
        "features",
        "--manifest",
        str(manifest),
        "--root",
        str(root),
        "--cache",
        str(cache),
        "--n-mels",
        "40",
        "--shard-size",
        "8",
        "--workers",
        "1",
        "--quiet",
    ]


def _shards(directory):
    return sorted(p for p in directory.rglob("shard-*.pkl"))


@pytest.mark.slow
def test_resume_after_kill_gives_identical_cache(tmp_path, wuw):
    catalogue = wuw.subset(wuw.utterances[:120])
    manifest = tmp_path / "MANIFEST.tsv"
    write_manifest(catalogue, manifest)
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    # Uninterrupted reference run.
    subprocess.run(
        _run_features(manifest, wuw.root, tmp_path / "ref"),
        check=True,
        env=env,
        capture_output=True,
    )
    reference = _shards(tmp_path / "ref")
    assert len(reference) == 15

    # Killed half-way (SIGKILL: no cleanup), then run again.
    process = subprocess.Popen(
        _run_features(manifest, wuw.root, tmp_path / "resumed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(_shards(tmp_path / "resumed")) < 4 and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(_shards(tmp_path / "resumed"))
    assert 4 <= done < 15, f"kill came too late or too early ({done} shards)"
    assert not list((tmp_path / "resumed").rglob("index.json"))

    result = subprocess.run(
        _run_features(manifest, wuw.root, tmp_path / "resumed"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{done} of 15 shards already done, resuming" in result.stderr
    resumed = _shards(tmp_path / "resumed")
    assert [p.name for p in resumed] == [p.name for p in reference]
    for a, b in zip(reference, resumed):
        assert a.read_bytes() == b.read_bytes()
    assert not [p for p in (tmp_path / "resumed").rglob("*") if ".tmp" in p.name]
    ref_index = next((tmp_path / "ref").rglob("index.json")).read_text()
    assert next((tmp_path / "resumed").rglob("index.json")).read_text() == ref_index


def _corpus(folder, sources, names):
    """A corpus at ``folder`` whose clips ``names`` are copies of ``sources``."""
    from keras_spkid.data.catalogue import read_manifest

    for name, source in zip(names, sources):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
    rows = "".join(f"{n.split('/')[0]}\t{n}\n" for n in names)
    (folder / "MANIFEST.tsv").write_text("speaker\tpath\n" + rows)
    return read_manifest(folder / "MANIFEST.tsv")


def test_two_corpora_in_folders_of_one_name_never_share_features(tmp_path, small):
    """Both manifests sit in a folder called ``data``: the cache folder name is the same."""
    names = ["s1/a.flac", "s1/b.flac", "s2/c.flac"]
    clips = [small.abspath(u) for u in small.utterances]
    first = _corpus(tmp_path / "one" / "data", clips[:3], names)
    second = _corpus(tmp_path / "two" / "data", clips[10:13], names)
    layer = LogMel(n_mels=40)
    cache = FeatureCache(tmp_path / "cache" / "data", layer, dtype="float32")
    cache.build(first, progress=False)
    assert cache.is_complete_for(first) and not cache.is_complete_for(second)
    cache.build(second, progress=False)
    features = cache.load()
    expected = layer(load_audio(second.root / names[0])[None])[0].numpy()
    np.testing.assert_allclose(features[names[0]], expected, atol=1e-5)  # were the first's
    assert not cache.is_complete_for(first)
    grown = _corpus(tmp_path / "two" / "data", clips[10:14], [*names, "s2/d.flac"])
    assert not cache.is_complete_for(grown)  # a grown manifest is built again
    shutil.copyfile(clips[20], second.root / names[1])  # a file replaced in place
    os.utime(second.root / names[1], ns=(1, 1))
    assert not cache.is_complete_for(second)
