"""Audio input checks: the thresholds measured on every real clip, and the memory of a
30-minute file.

Two measurements:

* **thresholds**: every clip of ``wuw_corpus_ii``, ``librispeech_1utt`` and ``fsdd``
  decoded by :func:`~keras_spkid.audio.io.load_audio`, with its duration, its speech
  (:func:`~keras_spkid.audio.vad.speech_seconds`, after VAD), the level spread of its
  speech frames and the fraction of its samples at full scale; next to them, inputs that
  must be refused (Gaussian noise at several levels, real speech scaled x50, 0.05 s of
  speech). The minimum speech (``MIN_SPEECH_SECONDS``), the steady-noise spread
  (``MIN_SPREAD_DB``) and the clipping limit (``MAX_CLIPPED_FRACTION``) must separate the
  two groups; the script says whether they do.
* **long file**: peak RSS of ``closest_celeb.py query`` and ``extract_embeds.py`` on a
  30-minute file of real speech (LibriSpeech readers end to end, 16 kHz FLAC), each in a
  fresh process, measured with ``os.wait4``. ``--before DIR`` also runs the same commands
  from another checkout (e.g. ``git archive <commit> | tar -x -C DIR``) for a before/after.

Run: ``.venv/bin/python bench/bench_audio_input.py [--before DIR] [--record]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import soundfile

from keras_spkid.audio.io import FULL_SCALE, MAX_CLIPPED_FRACTION, SAMPLE_RATE, load_audio
from keras_spkid.audio.vad import (
    MAX_GAIN_DB,
    MIN_SPEECH_SECONDS,
    MIN_SPREAD_DB,
    REFERENCE_DBFS,
    SPEECH_DBFS,
    EnergyVAD,
    frame_levels,
    speech_seconds,
)
from keras_spkid.data.corpora import CORPORA, load_corpus
from keras_spkid.errors import AudioError

LONG_MINUTES = 30


def clip_measures(x: np.ndarray, raw: np.ndarray) -> tuple[float, float, float, float]:
    """``(seconds, speech seconds, spread dB of the frames loud enough for speech, clipped
    fraction)``; the spread is measured before the steady-noise rule zeroes the speech."""
    levels = frame_levels(x)
    if levels.size:
        gain = np.clip(REFERENCE_DBFS - np.percentile(levels, 95), 0.0, MAX_GAIN_DB)
        levels = levels[EnergyVAD(SAMPLE_RATE, SPEECH_DBFS - gain).process(x)]
    spread = float(np.percentile(levels, 90) - np.percentile(levels, 10)) if levels.size else 0
    clipped = float(np.mean(np.abs(raw) >= FULL_SCALE))
    return x.size / SAMPLE_RATE, speech_seconds(x), spread, clipped


def thresholds(data: Path) -> str:
    rows, refused = [], 0
    for name in CORPORA:
        catalogue = load_corpus(name, data)
        measures = []
        for utterance in catalogue:
            path = catalogue.abspath(utterance)
            try:
                x = load_audio(path)
            except AudioError as error:
                refused += 1
                print(f"refused: {error}", file=sys.stderr)
                continue
            raw, _ = soundfile.read(path, dtype="float32")
            measures.append(clip_measures(x, raw))
        m = np.asarray(measures)
        rows.append(
            [
                name,
                len(catalogue),
                f"{m[:, 0].min():.3f}",
                f"{m[:, 1].min():.2f}",
                f"{np.percentile(m[:, 1], 1):.2f}",
                f"{m[:, 2].min():.1f}",
                f"{100 * m[:, 3].max():.3f}%",
                int(np.sum(m[:, 1] < MIN_SPEECH_SECONDS)),
            ]
        )
    real = _common.table(
        [
            "corpus",
            "clips",
            "shortest s",
            "least speech s",
            "speech s, 1st percentile",
            "least spread dB",
            "most clipped",
            f"under {MIN_SPEECH_SECONDS:g} s of speech",
        ],
        rows,
    )
    rng = np.random.default_rng(0)
    reading = load_audio(data / "librispeech_1utt" / "5703/5703-47198-0000.flac")
    bad_rows = []
    for level in (1e-3, 0.01, 0.1, 0.5):
        for seconds in (0.2, 3.0, 30.0):
            noise = (level * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
            m = clip_measures(noise, noise)
            bad_rows.append([f"Gaussian noise, std {level:g}, {seconds:g} s", *_fmt(m)])
    loud = 50 * reading[: 6 * SAMPLE_RATE]
    bad_rows.append(
        ["real speech x50 (float), 6 s", *_fmt(clip_measures(np.clip(loud, -1, 1), loud))]
    )
    short = reading[SAMPLE_RATE : SAMPLE_RATE + 800]
    bad_rows.append(["real speech, 0.05 s", *_fmt(clip_measures(short, short))])
    bad = _common.table(["input", "seconds", "speech s", "spread dB", "clipped"], bad_rows)
    return (
        f"Every real clip ({refused} refused by `load_audio`): the limits are minimum speech "
        f"{MIN_SPEECH_SECONDS:g} s, steady-noise spread {MIN_SPREAD_DB:g} dB, clipped "
        f"samples {100 * MAX_CLIPPED_FRACTION:g}%.\n\n{real}\n\nInputs that must be "
        f"refused:\n\n{bad}\n"
    )


def _fmt(m) -> list[str]:
    return [f"{m[0]:.2f}", f"{m[1]:.2f}", f"{m[2]:.1f}", f"{100 * m[3]:.1f}%"]


def long_file(data: Path, folder: Path) -> Path:
    """A ``LONG_MINUTES`` minute 16 kHz FLAC of LibriSpeech readers end to end."""
    catalogue = load_corpus("librispeech_1utt", data)
    parts, total = [], 0
    for utterance in sorted(catalogue, key=lambda u: str(u.path)):
        parts.append(load_audio(catalogue.abspath(utterance)))
        total += parts[-1].size
        if total >= LONG_MINUTES * 60 * SAMPLE_RATE:
            break
    path = folder / "long.flac"
    x = np.concatenate(parts)[: LONG_MINUTES * 60 * SAMPLE_RATE]
    soundfile.write(path, x, SAMPLE_RATE, subtype="PCM_16")
    return path


PEAK_RSS_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
)
"""Runs the measured command as its own child: Linux hands a process spawned straight
from this one (vfork + exec) this process's peak RSS as its ``ru_maxrss`` floor, and
this one holds TensorFlow and a 30-minute waveform; the small wrapper does not."""


def peak_rss(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """``(peak RSS GB, wall s, exit status)`` of ``command`` run in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(cwd))
    start = time.perf_counter()
    wrapper = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_WRAPPER, *command],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    maxrss_kib, status = (int(v) for v in wrapper.stdout.split())
    return maxrss_kib / 1e6, time.perf_counter() - start, status


def memory(data: Path, before: Path | None, before_label: str | None = None) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        audio = long_file(data, folder)
        (folder / "list.tsv").write_text(f"path\n{audio.name}\n")
        python = sys.executable
        for label, repo in [("before", before), ("after", _common.REPO_ROOT)]:
            if repo is None:
                continue
            gallery = repo / "keras_spkid" / "pretrained" / "default" / "gallery.npz"
            commands = {
                "short clip query (the process alone)": [
                    python, "closest_celeb.py", "query", "--gallery", str(gallery),
                    "--audio", str(data / "librispeech_1utt" / "5703/5703-47198-0000.flac"),
                ],
                f"{LONG_MINUTES} min query": [
                    python, "closest_celeb.py", "query", "--gallery", str(gallery),
                    "--audio", str(audio),
                ],
                f"{LONG_MINUTES} min extract": [
                    python, "extract_embeds.py", "--manifest", str(folder / "list.tsv"),
                    "--root", str(folder), "--output", str(folder / f"{label}.npz"), "--quiet",
                ],
            }  # fmt: skip
            for name, command in commands.items():
                gb, wall, status = peak_rss(command, repo)
                rows.append([label, name, f"{gb:.2f}", f"{wall:.0f}", status])
                print(rows[-1], flush=True)
    return (
        f"Peak RSS of one process per command on a {LONG_MINUTES}-minute 16 kHz FLAC of real "
        "speech (LibriSpeech readers end to end), default model; `before` is the checkout "
        f"given with `--before` ({before_label or before}).\n\n"
        + _common.table(["code", "command", "peak RSS GB", "wall s", "exit"], rows)
    )


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--before", type=Path, help="another checkout to run the same commands")
    parser.add_argument("--before-label", help="what --before is, for the record (a commit)")
    parser.add_argument("--skip-memory", action="store_true", help="thresholds only")
    args = parser.parse_args(argv)
    env = _common.environment()
    body = thresholds(args.data)
    if not args.skip_memory:
        body += "\n" + memory(args.data, args.before, args.before_label)
    _common.finish(
        args, "audio_input", "Audio input checks (`bench/bench_audio_input.py`)", env, body
    )


if __name__ == "__main__":
    main()
