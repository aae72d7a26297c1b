"""The official-archive path against a local server: parts, MD5, join, extract, convert."""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest
import soundfile as sf

from keras_spkid.cli.download import main
from keras_spkid.data.voxceleb import scan_voxceleb
from keras_spkid.download.archives import Part, extract, read_part_list
from keras_spkid.download.fetch import Fetcher
from keras_spkid.download.official import Release, prepare_release
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.errors import DataError, ListFormatError
from tests.download.conftest import alignment
from tests.fixtures.http_server import MediaServer

FAST = RetryPolicy(retries=2, backoff=0.01)
PASSWORD = "correct-horse-battery"
CLIPS = {  # member path -> (LibriSpeech clip, start second, seconds)
    "id10001/1zcIwhmdeo4/00001": ("103/103-1240-0000.flac", 0.0, 2.0),
    "id10001/1zcIwhmdeo4/00002": ("103/103-1240-0000.flac", 4.0, 1.5),
    "id10002/-abcdefghij/00001": ("1040/1040-133433-0000.flac", 1.0, 2.5),
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def official(shared_data, tmp_path_factory):
    """Served files of a miniature official release, and what they hold.

    ``vox1_dev_wav_parta{a,b,c}`` (a zip of ``wav/<spk>/<yt>/<utt>.wav`` split in three),
    ``vox1_test_wav.zip`` (one part) and ``vox2_test_aac.zip`` (``aac/...m4a``).
    """
    root = tmp_path_factory.mktemp("official")
    served = root / "served"
    served.mkdir()
    speech = shared_data / "librispeech_1utt"
    wavs, m4as = {}, {}
    for name, (clip, start, seconds) in CLIPS.items():
        audio = sf.read(speech / clip, dtype="int16")[0]
        audio = audio[int(start * 16000) : int((start + seconds) * 16000)]
        buffer = io.BytesIO()
        sf.write(buffer, audio, 16000, subtype="PCM_16", format="WAV")
        wavs[name] = buffer.getvalue()
        (root / "x.wav").write_bytes(wavs[name])
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-i",
                str(root / "x.wav"),
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                str(root / "x.m4a"),
            ],
            check=True,
        )
        m4as[name] = ((root / "x.m4a").read_bytes(), audio.astype(np.float32) / 32768)

    def zip_bytes(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as handle:
            for member, data in members.items():
                handle.writestr(member, data)
        return buffer.getvalue()

    dev_zip = zip_bytes({f"wav/{name}.wav": data for name, data in wavs.items()})
    third = len(dev_zip) // 3 + 1
    parts = []
    for index in range(3):
        name = f"vox1_dev_wav_parta{'abc'[index]}"
        chunk = dev_zip[index * third : (index + 1) * third]
        (served / name).write_bytes(chunk)
        parts.append(Part(name, _md5(chunk)))
    test_zip = zip_bytes({f"wav/{name}.wav": data for name, data in wavs.items()})
    (served / "vox1_test_wav.zip").write_bytes(test_zip)
    aac_zip = zip_bytes({f"aac/{name}.m4a": data for name, (data, _) in m4as.items()})
    (served / "vox2_test_aac.zip").write_bytes(aac_zip)
    return {
        "served": served,
        "wavs": wavs,
        "m4as": m4as,
        "vox1_dev": Release(
            "vox1-dev", tuple(parts), "vox1_dev_wav.zip", _md5(dev_zip), "voxceleb1/dev"
        ),
        "vox2_test": Release(
            "vox2-test",
            (Part("vox2_test_aac.zip", _md5(aac_zip)),),
            "vox2_test_aac.zip",
            _md5(aac_zip),
            "voxceleb2/test",
            convert=True,
        ),
        "vox1_test_md5": _md5(test_zip),
    }


def _all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_parts_are_verified_joined_and_extracted(official, tmp_path):
    release = official["vox1_dev"]
    with MediaServer(official["served"]) as server:
        target = prepare_release(
            release, tmp_path, Fetcher(retry=FAST), mirror=server.url(), progress=False
        )
        assert [r.path for r in server.requests] == [f"/{p.name}" for p in release.parts]
        assert (
            prepare_release(
                release, tmp_path, Fetcher(retry=FAST), mirror=server.url(), progress=False
            )
            == target
        )
        assert len(server.requests) == 3  # the rerun fetched nothing
    assert target == tmp_path / "voxceleb1" / "dev"
    for name, data in official["wavs"].items():
        assert (target / "wav" / f"{name}.wav").read_bytes() == data
    assert len(scan_voxceleb(target)) == len(CLIPS)
    # Parts and the joined zip are deleted once extracted; nothing partial is left.
    assert _all_files(tmp_path / "archives") == []
    assert not [f for f in _all_files(tmp_path) if f.endswith(".part")]


def test_corrupt_part_is_detected_and_fetched_again(official, tmp_path, caplog):
    release = official["vox1_dev"]
    with MediaServer(official["served"]) as server:
        server.corrupt("vox1_dev_wav_partab")
        target = prepare_release(
            release,
            tmp_path,
            Fetcher(retry=FAST),
            mirror=server.url(),
            progress=False,
            keep_archives=True,
        )
    assert len(server.requests_for("vox1_dev_wav_partab")) == 2
    assert "vox1_dev_wav_partab: MD5" in caplog.text and "download 1 of 3" in caplog.text
    assert (target / "wav" / f"{next(iter(CLIPS))}.wav").is_file()
    assert "vox1_dev_wav.zip.md5" in _all_files(tmp_path / "archives")  # kept, verified


def test_interrupted_part_download_resumes_with_range(official, tmp_path):
    release = official["vox1_dev"]
    with MediaServer(official["served"]) as server:
        server.cut("vox1_dev_wav_partac", after_bytes=1000)
        target = prepare_release(
            release, tmp_path, Fetcher(retry=FAST), mirror=server.url(), progress=False
        )
    requests = server.requests_for("vox1_dev_wav_partac")
    assert [(r.range, r.status) for r in requests] == [(None, 200), ("bytes=1000-", 206)]
    assert len(scan_voxceleb(target)) == len(CLIPS)


def test_md5_that_never_matches_is_a_clear_error(official, tmp_path):
    release = official["vox1_dev"]
    wrong = Release(
        release.name,
        (Part(release.parts[0].name, "0" * 32), *release.parts[1:]),
        release.archive,
        release.md5,
        release.target,
    )
    with (
        MediaServer(official["served"]) as server,
        pytest.raises(DataError, match=r"vox1_dev_wav_partaa: MD5 still wrong after 3 downloads"),
    ):
        prepare_release(wrong, tmp_path, Fetcher(retry=FAST), mirror=server.url())
    assert len(server.requests) == 3


def test_wrong_md5_of_the_joined_archive(official, tmp_path):
    release = official["vox1_dev"]
    wrong = Release(release.name, release.parts, release.archive, "f" * 32, release.target)
    with (
        MediaServer(official["served"]) as server,
        pytest.raises(
            DataError, match=r"vox1_dev_wav\.zip: MD5 of the joined parts is .*delete them"
        ),
    ):
        prepare_release(wrong, tmp_path, Fetcher(retry=FAST), mirror=server.url())
    assert _all_files(tmp_path / "archives") == sorted(
        name for p in release.parts for name in (p.name, f"{p.name}.md5")
    )


def test_m4a_archive_is_converted_to_16k_wav(official, tmp_path):
    with MediaServer(official["served"]) as server:
        target = prepare_release(
            official["vox2_test"],
            tmp_path,
            Fetcher(retry=FAST),
            mirror=server.url(),
            workers=2,
            progress=False,
        )
    assert target == tmp_path / "voxceleb2" / "test"
    for name, (m4a, source) in official["m4as"].items():
        assert (target / "aac" / f"{name}.m4a").read_bytes() == m4a
        info = sf.info(target / "wav" / f"{name}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        audio = sf.read(target / "wav" / f"{name}.wav", dtype="float32")[0]
        assert 0 <= audio.size - source.size <= 2048  # AAC pads the last frame
        lag, correlation = alignment(source, audio, 0)
        assert lag == 0 and correlation > 0.99
    assert len(scan_voxceleb(target)) == len(CLIPS)  # the wav tree is used


def test_unsafe_members_are_rejected(tmp_path):
    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as handle:
        handle.writestr("wav/ok.txt", b"fine")
        handle.writestr("../escaped.txt", b"evil")
    with pytest.raises(DataError, match=r"unsafe member name '\.\./escaped\.txt'"):
        extract(evil_zip, tmp_path / "dest")
    evil_tar = tmp_path / "evil.tar.gz"
    with tarfile.open(evil_tar, "w:gz") as handle:
        info = tarfile.TarInfo("/tmp/absolute.txt")
        info.size = 4
        handle.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(DataError, match="unsafe member name '/tmp/absolute.txt'"):
        extract(evil_tar, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_interrupted_extraction_resumes(official, tmp_path):
    archive = official["served"] / "vox1_test_wav.zip"
    assert extract(archive, tmp_path) == len(CLIPS)
    victim = tmp_path / "wav" / f"{next(iter(CLIPS))}.wav"
    victim.unlink()
    assert extract(archive, tmp_path) == 1
    assert victim.read_bytes() == official["wavs"][next(iter(CLIPS))]


def test_cli_archive_with_credentials_from_the_environment(
    official, tmp_path, capsys, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    with MediaServer(official["served"], auth=("alice", PASSWORD)) as server:
        parts = tmp_path / "parts.txt"
        parts.write_text(f"{server.url('vox1_test_wav.zip')} {official['vox1_test_md5']}\n")
        args = [
            "archive",
            "--dataset",
            "vox1-test",
            "--parts",
            str(parts),
            "--out",
            str(tmp_path / "data"),
            "--user",
            "alice",
            "--backoff",
            "0.01",
            "--quiet",
        ]
        monkeypatch.setenv("SPKID_VOX_PASSWORD", "wrong-" + PASSWORD)
        assert main(args) == 2
        failed = capsys.readouterr()
        monkeypatch.setenv("SPKID_VOX_PASSWORD", PASSWORD)
        assert main(args) == 0
        succeeded = capsys.readouterr()
    assert failed.err.startswith("error: ") and failed.err.count("\n") == 1
    assert "HTTP 401" in failed.err and "check the user name and password" in failed.err
    for text in (failed.out, failed.err, succeeded.out, succeeded.err, caplog.text):
        assert PASSWORD not in text
    assert "vox1-test:" in succeeded.out
    assert len(scan_voxceleb(tmp_path / "data" / "voxceleb1" / "test")) == len(CLIPS)


def test_part_lists(tmp_path):
    good = tmp_path / "fileparts.txt"
    good.write_text(
        "# parts\nvox1_dev_wav_partaa E395D020928BC15670B570A21695ED96\n\n"
        "https://host/files/vox1_test_wav.zip 185fdc63c3c739954633d50379a3d102\n"
    )
    assert read_part_list(good) == [
        Part("vox1_dev_wav_partaa", "e395d020928bc15670b570a21695ed96"),
        Part(
            "vox1_test_wav.zip",
            "185fdc63c3c739954633d50379a3d102",
            "https://host/files/vox1_test_wav.zip",
        ),
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("vox1_dev_wav_partaa e395d0\n")
    with pytest.raises(ListFormatError, match=r"bad\.txt:1: .*32 hex digit md5"):
        read_part_list(bad)
    bad.write_text("ok 185fdc63c3c739954633d50379a3d102\n../up 185fdc63c3c739954633d50379a3d102\n")
    with pytest.raises(ListFormatError, match=r"bad\.txt:2: "):
        read_part_list(bad)
