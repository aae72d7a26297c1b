"""The YouTube re-scraper against a local server: real yt-dlp, ffmpeg, files and kills.

Nothing here touches the internet: the URL template points yt-dlp's generic extractor
at a server on 127.0.0.1 that serves WebM/Opus and MP4/AAC made from real speech.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import yt_dlp

from keras_spkid.cli.download import main
from keras_spkid.download.rescrape import (
    COVERAGE_FILE,
    FAILURES_FILE,
    Split,
    infer_split_name,
    plan_segments,
    rescrape,
)
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.download.youtube import is_unavailable
from keras_spkid.errors import ListFormatError
from tests.download.conftest import GONE, SAMPLE_RATE, alignment
from tests.fixtures.http_server import MediaServer

FAST = RetryPolicy(retries=2, backoff=0.01)
TEN_MS = SAMPLE_RATE // 100
REPO = Path(__file__).resolve().parents[2]


def _splits(site) -> list[Split]:
    return [Split("dev", site.dev_txt), Split("test", site.test_txt)]


def _run(site, server, out, **kwargs) -> dict:
    return rescrape(
        _splits(site), out, url_template=server.url("{id}"), retry=FAST, progress=False, **kwargs
    )


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> content)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _failures(out: Path) -> dict[str, str]:
    lines = (out / FAILURES_FILE).read_text().splitlines()
    assert lines[0] == "split\tpath\tyoutube_id\tstatus\treason"
    rows = [line.split("\t") for line in lines[1:]]
    return {f"{split}/wav/{path}": status for split, path, _, status, _ in rows}


@pytest.fixture(scope="module")
def reference(media_site, tmp_path_factory):
    """One uninterrupted run: ``(out, coverage, requests the server saw)``."""
    out = tmp_path_factory.mktemp("reference")
    with MediaServer(media_site.media) as server:
        coverage = _run(media_site, server, out, workers=2)
    return out, coverage, server.requests


def test_every_segment_has_the_right_length_and_content(reference, media_site):
    out, _, _ = reference
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.wav")}
    assert written == set(media_site.expected)
    for key, expected in media_site.expected.items():
        info = sf.info(out / key)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        audio = sf.read(out / key, dtype="float32")[0]
        assert audio.size == expected.length, key
        lag, correlation = alignment(audio, media_site.sources[expected.video], expected.start)
        assert abs(lag) <= TEN_MS, f"{key}: cut {1000 * lag / SAMPLE_RATE:.1f} ms off"
        assert correlation > 0.9, f"{key}: not the listed speech (r={correlation:.2f})"


def test_lost_utterances_are_reported_and_the_rest_completes(reference, media_site):
    out, coverage, _ = reference
    assert _failures(out) == media_site.lost
    reasons = (out / FAILURES_FILE).read_text()
    assert "404" in reasons and "after the end of the audio" in reasons
    assert coverage == json.loads((out / COVERAGE_FILE).read_text())
    assert coverage["dev"] == {
        "utterances": 8, "recovered": 5, "coverage": 0.625, "unavailable": 2, "error": 0,
        "too_short": 1, "videos": 3, "videos_recovered": 2,
    }  # fmt: skip
    assert coverage["test"]["recovered"] == coverage["test"]["utterances"] == 4


def test_each_video_is_downloaded_once_and_then_deleted(reference):
    out, _, requests = reference
    per_video: dict[str, list[int]] = {}
    for request in requests:
        per_video.setdefault(request.path.lstrip("/"), []).append(request.status)
    # yt-dlp's generic extractor probes the URL, then downloads it: two GETs per
    # video however many utterances and speakers it holds; the 404 is not retried.
    assert per_video == {
        GONE: [404],
        **{v: [200, 200] for v in ("webmVideo01", "webmVideo02", "m4aVideo-01", "m4aVideo-02")},
    }
    assert not any((out / "downloads").iterdir())


def test_rerun_downloads_nothing(reference, media_site, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    before = _files(out)
    with MediaServer(media_site.media) as server:
        coverage = _run(media_site, server, out)
    assert server.requests == []  # finished, unavailable and too-short ones are known
    assert coverage == reference[1]
    assert _files(out) == before


def test_transient_errors_are_retried(reference, media_site, tmp_path):
    out = tmp_path / "out"
    with MediaServer(media_site.media) as server:
        server.fail("webmVideo02", times=2, status=503)
        server.cut("m4aVideo-02", after_bytes=40_000, skip=1)  # drop the download itself
        _run(media_site, server, out)
    statuses = [r.status for r in server.requests_for("webmVideo02")]
    assert statuses[:2] == [503, 503] and statuses[2:] == [200, 200]
    resumed = server.requests_for("m4aVideo-02")[2:]  # after the probe and the cut GET
    assert len(resumed) == 1 and resumed[0].status == 206  # yt-dlp resumed with Range
    assert 0 < int(resumed[0].range.removeprefix("bytes=").rstrip("-")) <= 40_000
    assert _files(out) == _files(reference[0])


def test_an_error_that_outlasts_the_retries_is_retried_by_the_next_run(
    reference, media_site, tmp_path
):
    out = tmp_path / "out"
    with MediaServer(media_site.media) as server:
        server.fail("m4aVideo-02", times=FAST.retries + 1, status=503)
        coverage = _run(media_site, server, out)
    assert coverage["test"]["error"] == 2 and coverage["test"]["recovered"] == 2
    assert set(_failures(out).values()) == {"unavailable", "too_short", "error"}
    with MediaServer(media_site.media) as server:
        coverage = _run(media_site, server, out)
    assert [r.path for r in server.requests] == ["/m4aVideo-02"] * 2
    assert coverage == reference[1]
    assert _files(out) == _files(reference[0])


def test_server_without_range_support(reference, media_site, tmp_path):
    out = tmp_path / "out"
    with MediaServer(media_site.media, ranges=False) as server:
        _run(media_site, server, out)
    assert _files(out) == _files(reference[0])


def test_killed_run_resumes_to_the_same_result(reference, media_site, tmp_path):
    out = tmp_path / "out"
    # 300 kB/s: each video takes about a second, so the kill lands mid-download.
    with MediaServer(media_site.media, bytes_per_second=300_000) as server:
        command = [sys.executable, "-m", "keras_spkid.cli.download", "youtube",
                   "--txt", f"dev={media_site.dev_txt}", "--txt", f"test={media_site.test_txt}",
                   "--out", str(out), "--url-template", server.url("{id}"),
                   "--workers", "1", "--backoff", "0.01", "--quiet"]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            wavs = list(out.rglob("*.wav"))
            if wavs and list((out / "downloads").glob("*.part")):
                break
            time.sleep(0.01)
        assert process.poll() is None, process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        partial = _files(out)
        assert any(name.endswith(".part") for name in partial), "killed between downloads"
        assert 0 < sum(name.endswith(".wav") for name in partial) < len(media_site.expected)

        _run(media_site, server, out)
    final = _files(out)
    assert not [name for name in final if ".part" in name]
    assert final == _files(reference[0])


def test_segments_are_cut_at_640_samples_per_frame(media_site, tmp_path):
    videos = plan_segments(_splits(media_site), tmp_path)
    segments = {f"{s.split}/wav/{s.rel}": s for group in videos.values() for s in group}
    assert set(videos) == {
        "goneVideo00",
        "m4aVideo-01",
        "m4aVideo-02",
        "webmVideo01",
        "webmVideo02",
    }
    for key, expected in media_site.expected.items():
        segment = segments[key]
        assert (segment.start, segment.stop - segment.start) == (expected.start, expected.length)
        assert segment.path == tmp_path / key


def test_unsafe_or_inconsistent_txt_trees_are_rejected(media_site, tmp_path):
    bad = tmp_path / "vox1_dev_txt"
    shutil.copytree(media_site.dev_txt, bad)
    (bad / "txt" / "id10001" / "webmVideo01").rename(bad / "txt" / "id10001" / "short")
    with pytest.raises(ListFormatError, match="11-character YouTube id"):
        plan_segments([Split("dev", bad)], tmp_path)
    (bad / "txt" / "id10001" / "short").rename(bad / "txt" / "id10001" / "otherVideo1")
    with pytest.raises(ListFormatError, match=r"00001\.txt:2: .*YouTube id of its folder"):
        plan_segments([Split("dev", bad)], tmp_path)


def test_cli_reports_coverage_and_builds_features(media_site, tmp_path, capsys):
    out, cache = tmp_path / "voxceleb", tmp_path / "cache"
    with MediaServer(media_site.media) as server:
        code = main(["youtube", "--txt", str(media_site.dev_txt), "--txt", str(media_site.test_txt),
                     "--out", str(out), "--url-template", server.url("{id}"), "--backoff", "0.01",
                     "--quiet", "--features", "--n-mels", "40", "--cache", str(cache)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "dev" in printed and "5 of 8" in printed and "2 unavailable, 1 too_short" in printed
    assert "test: cached 4 utterances" in printed
    assert len(list(cache.glob("voxceleb-dev/logmel-*/index.json"))) == 1


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    code = main(["youtube", "--txt", str(tmp_path / "missing_txt"), "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: ") and error.count("\n") == 1 and "missing_txt" in error


def test_split_names_and_failure_kinds():
    assert infer_split_name("data/vox1_dev_txt") == "dev"
    assert infer_split_name("data/vox2_test_txt/txt") == "test"
    assert infer_split_name("data/my_list") == "my_list"
    gone = yt_dlp.utils.ExtractorError(
        "Private video. Sign in if you've been granted access", expected=True
    )
    assert is_unavailable(yt_dlp.utils.DownloadError(str(gone), (type(gone), gone, None)))
    assert is_unavailable(yt_dlp.utils.DownloadError("ERROR: [youtube] x: Video unavailable"))
    throttled = "ERROR: [youtube] x: Sign in to confirm you're not a bot"
    assert not is_unavailable(yt_dlp.utils.DownloadError(throttled))
    reset = ConnectionResetError("Connection reset by peer")
    assert not is_unavailable(
        yt_dlp.utils.DownloadError("ERROR: reset", (type(reset), reset, None))
    )
