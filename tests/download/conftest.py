"""A miniature YouTube: media files made from real speech, and txt trees listing them.

``media_site`` encodes LibriSpeech speech from ``../shared/data`` into the formats
YouTube serves (Opus in WebM, one of them with a video track; AAC in m4a) with
ffmpeg, and writes VoxCeleb txt trees (VoxCeleb1 dialect for ``dev``, VoxCeleb2 dialect
for ``test``) whose frame ranges point into them. One listed video is never served
(it stands for a private or removed one) and one utterance ends after its video.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from keras_spkid.data.catalogue import read_manifest
from keras_spkid.data.voxceleb import FRAME_RATE
from tests.fixtures.noise_sets import musan_raw, rirs_raw  # noqa: F401 (fixtures)
from tests.fixtures.voxceleb_tree import _write_timestamps

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE
GONE = "goneVideo00"

# video id -> (container, LibriSpeech clips concatenated into its audio)
VIDEOS = {
    "webmVideo01": ("webm+video", ["103/103-1240-0000.flac", "1040/1040-133433-0000.flac"]),
    "webmVideo02": ("webm", ["1069/1069-133699-0000.flac"]),
    "m4aVideo-01": ("m4a", ["1098/1098-133695-0000.flac"]),
    "m4aVideo-02": ("m4a", ["1116/1116-132847-0000.flac", "1235/1235-135883-0000.flac"]),
}

# (split, speaker, video, utterance, start seconds, seconds); several speakers share
# webmVideo01, webmVideo02/00003 ends after its video, goneVideo00 is not served.
UTTERANCES = [
    ("dev", "id10001", "webmVideo01", "00001", 1.0, 3.0),
    ("dev", "id10001", "webmVideo01", "00002", 6.0, 3.52),
    ("dev", "id10002", "webmVideo01", "00001", 16.0, 6.0),
    ("dev", "id10002", "webmVideo02", "00001", 0.0, 2.0),
    ("dev", "id10002", "webmVideo02", "00002", 9.4, 4.0),
    ("dev", "id10002", "webmVideo02", "00003", 14.0, 4.0),
    ("dev", "id10003", GONE, "00001", 2.0, 3.0),
    ("dev", "id10003", GONE, "00002", 8.0, 3.0),
    ("test", "id00012", "m4aVideo-01", "00001", 0.52, 5.0),
    ("test", "id00012", "m4aVideo-01", "00002", 7.0, 6.6),
    ("test", "id00013", "m4aVideo-02", "00001", 12.0, 8.0),
    ("test", "id00013", "m4aVideo-02", "00002", 20.04, 2.2),
]


@dataclasses.dataclass(frozen=True)
class Expected:
    """Where an utterance comes from: ``sources[video][start : start + length]``."""

    video: str
    start: int
    length: int


@dataclasses.dataclass(frozen=True)
class MediaSite:
    """Attributes:
    media: folder to serve: files named by video id, without extension, like
        YouTube's media URLs (the server tells WebM from MP4 by content).
    dev_txt, test_txt: txt trees (each holds ``txt/``).
    sources: ``{video id: float32 [samples]}`` 16 kHz audio before encoding.
    expected: ``{"<split>/wav/<speaker>/<video>/<utt>.wav": Expected}`` of the
        utterances that can be recovered.
    lost: ``{same kind of path: status}`` of those that cannot.
    """

    media: Path
    dev_txt: Path
    test_txt: Path
    sources: dict[str, np.ndarray]
    expected: dict[str, Expected]
    lost: dict[str, str]


@pytest.fixture(scope="session")
def media_site(shared_data, tmp_path_factory) -> MediaSite:
    root = tmp_path_factory.mktemp("media_site")
    corpus = read_manifest(shared_data / "librispeech_1utt" / "MANIFEST.tsv")
    media = root / "media"
    media.mkdir()
    sources = {}
    for video, (container, clips) in VIDEOS.items():
        audio = np.concatenate([sf.read(corpus.root / clip, dtype="int16")[0] for clip in clips])
        wav = root / f"{video}.wav"
        sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
        sources[video] = audio.astype(np.float32) / 32768
        _encode(wav, media / video, container)

    rng = np.random.default_rng(0)
    dev_txt, test_txt, unused = root / "vox1_dev_txt", root / "vox2_test_txt", root / "unused"
    expected, lost = {}, {}
    for split, speaker, video, utt, start, seconds in UTTERANCES:
        first_frame = round(start * FRAME_RATE)
        roots = (dev_txt, unused) if split == "dev" else (unused, test_txt)
        _write_timestamps(roots, speaker, video, utt, seconds, first_frame, rng)
        key = f"{split}/wav/{speaker}/{video}/{utt}.wav"
        length = round(seconds * FRAME_RATE) * SAMPLES_PER_FRAME
        begin = first_frame * SAMPLES_PER_FRAME
        if video == GONE:
            lost[key] = "unavailable"
        elif begin + length > sources[video].size + SAMPLES_PER_FRAME:
            lost[key] = "too_short"
        else:
            expected[key] = Expected(video, begin, length)
    return MediaSite(media, dev_txt, test_txt, sources, expected, lost)


def _encode(wav: Path, target_stem: Path, container: str) -> None:
    """Encode ``wav`` as YouTube serves audio: Opus in WebM or AAC in MP4."""
    if container == "m4a":
        codec = ["-c:a", "aac", "-b:a", "64k", "-f", "mp4"]
    else:
        codec = ["-c:a", "libopus", "-b:a", "48k", "-f", "webm"]
    video = ["-f", "lavfi", "-i", "color=c=gray:s=32x32:r=25"] if container == "webm+video" else []
    video_codec = ["-c:v", "libvpx", "-b:v", "20k", "-shortest"] if video else ["-vn"]
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *video,
            "-i",
            str(wav),
            *video_codec,
            *codec,
            str(target_stem),
        ],
        check=True,
    )


def alignment(
    segment: np.ndarray, source: np.ndarray, start: int, max_lag: int = 1600
) -> tuple[int, float]:
    """``(lag in samples, normalised correlation)`` of ``segment`` against
    ``source[start + lag : ...]``, searched over ``|lag| <= max_lag``."""
    lo = max(start - max_lag, 0)
    window = source[lo : start + segment.size + max_lag]
    scores = correlate(window, segment, mode="valid", method="fft")
    power = np.concatenate([[0.0], np.cumsum(window.astype(np.float64) ** 2)])
    energy = np.sqrt(power[segment.size :] - power[: -segment.size])
    scores = scores / (energy * np.linalg.norm(segment) + 1e-12)
    best = int(np.argmax(scores))
    return lo + best - start, float(scores[best])
