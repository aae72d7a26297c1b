"""MUSAN splitting and RIR preparation, from folders and through a local server."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import soundfile as sf

from keras_spkid.cli.download import main
from keras_spkid.download.archives import Part
from keras_spkid.download.augmentation import (
    musan_files,
    prepare_musan,
    prepare_rirs,
    rir_files,
    split_musan,
)
from keras_spkid.download.fetch import Fetcher
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.errors import DataError
from tests.fixtures.http_server import MediaServer

FAST = RetryPolicy(retries=1, backoff=0.01)
CHUNK, HOP = 5 * 16000, 3 * 16000


def _chunk_names(samples: int) -> list[str]:
    starts = range(0, max(samples - CHUNK, 0) + 1, HOP)
    return [f"{start // 16000:05d}.wav" for start in starts]


def test_musan_is_split_into_5s_chunks_with_a_3s_hop(musan_raw, tmp_path):
    out = tmp_path / "musan_split"
    written = split_musan(musan_raw / "musan", out, workers=2, progress=False)
    for source in sorted((musan_raw / "musan" / "speech").rglob("*.wav")):
        audio = sf.read(source, dtype="int16")[0]
        folder = out / "speech" / "librivox" / source.stem
        names = sorted(p.name for p in folder.iterdir())
        assert names == _chunk_names(audio.size)
        for name in names:  # exact copies of the source samples
            start = int(name[:5]) * 16000
            chunk, rate = sf.read(folder / name, dtype="int16")
            assert rate == 16000 and np.array_equal(chunk, audio[start : start + CHUNK])
    short = sorted((out / "noise" / "free-sound" / "noise-free-sound-0001").iterdir())
    assert [p.name for p in short] == ["00000.wav"] and sf.info(short[0]).frames == 32000
    music = out / "music" / "fma" / "music-fma-0000"
    info = sf.info(music / "00003.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        16000,
        1,
        "PCM_16",
        CHUNK,
    )
    assert sorted(p.name for p in music.iterdir()) == _chunk_names(160000)
    files = musan_files(out)
    assert sorted(files) == ["music", "noise", "speech"]
    assert written == sum(len(paths) for paths in files.values())


def test_split_resumes_after_an_interruption(musan_raw, tmp_path):
    out = tmp_path / "musan_split"
    split_musan(musan_raw / "musan", out, progress=False)
    assert split_musan(musan_raw / "musan", out, progress=False) == 0
    victim = out / "speech" / "librivox" / "speech-librivox-0002"
    shutil.rmtree(victim)
    stale = out / "speech" / "librivox" / "speech-librivox-0002.part"
    stale.mkdir()
    (stale / "00000.wav").write_bytes(b"half")
    assert split_musan(musan_raw / "musan", out, progress=False) == len(list(victim.iterdir()))
    assert not stale.exists()
    with pytest.raises(DataError, match="no <category>/<subset>/<file>.wav"):
        split_musan(tmp_path / "empty", out)


def _serve(tmp_path, name, writer):
    """Write ``<served>/<name>`` with ``writer(path)``; return (served folder, its MD5)."""
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    writer(served / name)
    md5 = hashlib.md5((served / name).read_bytes()).hexdigest()
    return served, md5


def test_musan_download_extract_and_split(musan_raw, tmp_path):
    def pack(path):
        with tarfile.open(path, "w:gz") as handle:
            handle.add(musan_raw / "musan", arcname="musan")

    served, md5 = _serve(tmp_path, "musan.tar.gz", pack)
    with MediaServer(served) as server:
        part = Part("musan.tar.gz", md5, server.url("musan.tar.gz"))
        target = prepare_musan(tmp_path / "data", Fetcher(retry=FAST), part, progress=False)
        assert (
            main(
                [
                    "musan",
                    "--out",
                    str(tmp_path / "cli"),
                    "--url",
                    part.url,
                    "--md5",
                    md5,
                    "--quiet",
                ]
            )
            == 0
        )
    assert target == tmp_path / "data" / "musan_split"
    reference = split_musan(musan_raw / "musan", tmp_path / "reference", progress=False)
    for root in (target, tmp_path / "cli" / "musan_split"):
        assert sum(len(p) for p in musan_files(root).values()) == reference
    assert not (tmp_path / "data" / "archives" / "musan.tar.gz").exists()
    assert not (tmp_path / "data" / "musan" / "README").exists()  # only audio is unpacked


def test_rirs_download_keeps_small_and_medium_rooms(rirs_raw, tmp_path):
    def pack(path):
        with zipfile.ZipFile(path, "w") as handle:
            for file in sorted((rirs_raw / "RIRS_NOISES").rglob("*")):
                handle.write(file, file.relative_to(rirs_raw).as_posix())

    served, md5 = _serve(tmp_path, "rirs_noises.zip", pack)
    with MediaServer(served) as server:
        part = Part("rirs_noises.zip", md5, server.url("rirs_noises.zip"))
        target = prepare_rirs(tmp_path / "data", Fetcher(retry=FAST), part)
        assert (
            main(
                [
                    "rirs",
                    "--out",
                    str(tmp_path / "cli"),
                    "--url",
                    part.url,
                    "--md5",
                    md5,
                    "--rooms",
                    "largeroom",
                    "--quiet",
                ]
            )
            == 0
        )
    assert target == tmp_path / "data" / "RIRS_NOISES" / "simulated_rirs"
    rooms = sorted({path.split("/")[-3] for path in rir_files(target)})
    assert rooms == ["mediumroom", "smallroom"] and len(rir_files(target)) == 4
    assert not (tmp_path / "data" / "RIRS_NOISES" / "pointsource_noises").exists()
    cli = rir_files(tmp_path / "cli" / "RIRS_NOISES" / "simulated_rirs")
    assert {path.split("/")[-3] for path in cli} == {"largeroom"}
    original = rirs_raw / "RIRS_NOISES" / "simulated_rirs" / "smallroom" / "Room001"
    copied = target / "smallroom" / "Room001" / "Room001-00001.wav"
    assert copied.read_bytes() == (original / "Room001-00001.wav").read_bytes()


def test_cli_needs_the_md5_of_a_custom_url(tmp_path, capsys):
    assert main(["musan", "--out", str(tmp_path), "--url", "http://127.0.0.1:9/x.tar.gz"]) == 2
    assert "--url needs --md5" in capsys.readouterr().err
