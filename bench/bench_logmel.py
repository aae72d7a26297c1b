"""LogMel layer (TensorFlow graph) vs librosa: log-mel throughput on real speech.

What is measured: the time to turn 16 kHz waveforms into mean-normalised 64-band log-mel
filterbanks (n_fft 512, 25 ms Hann window, 10 ms hop, 20-7600 Hz, centred frames with
zero padding), on the same real clips for both implementations:

* **per clip**: every clip alone, variable length, as the feature cache and the
  ``spkid`` CLI do. Ours is :class:`keras_spkid.audio.frontend.LogMel` inside a
  ``tf.function`` with ``input_signature=[tf.TensorSpec([None], tf.float32)]`` (traced
  once, result converted to NumPy); the baseline is ``librosa.feature.melspectrogram``
  with the same parameters, then ``log(. + 1e-6)`` and mean subtraction over time.
* **batched**: the clips cut into equal-length crops (2 s by default; shorter clips
  zero-padded), grouped 32 to a batch, as a ``tf.data`` pipeline feeds a model. Ours
  runs the layer on each ``[32, samples]`` batch; the baselines are librosa on every
  crop in turn (the ratio reported) and librosa on the whole batch at once (librosa
  accepts leading batch axes).

Why: the issue asks the in-graph front end to be at least 2x librosa's throughput, since
it replaces librosa in the cache, in ``tf.data`` and inside saved models.

Clips are a fixed random choice of ``wuw_corpus_ii`` (8 kHz telephone speech, 1-10 s) and
``librispeech_1utt`` (16 kHz read speech, 5-35 s), decoded and resampled to 16 kHz once
by :func:`keras_spkid.audio.io.load_audio` before any timing. Throughput is seconds of
audio per second of wall time (x real time); ratios are ours/librosa throughput, paired
within each repetition, median over repetitions.

Run: ``.venv/bin/python bench/bench_logmel.py [--record]``
"""

from __future__ import annotations

import random

import _common  # first: it quiets TensorFlow's start-up logging
import numpy as np
import tensorflow as tf

from keras_spkid.audio.frontend import LogMel
from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.data.corpora import load_corpus
from keras_spkid.errors import SpkidError


def choose_clips(root, counts: dict[str, int], seed: int) -> list[np.ndarray]:
    """Decode a fixed random choice of ``counts[corpus]`` clips of each corpus (16 kHz)."""
    rng = random.Random(seed)
    clips = []
    for corpus, count in counts.items():
        if count <= 0:
            continue
        catalogue = load_corpus(corpus, root)
        for utt in rng.sample(list(catalogue), min(count, len(catalogue))):
            try:
                clips.append(load_audio(catalogue.abspath(utt), SAMPLE_RATE))
            except SpkidError as error:
                print(f"skipped {error}")
    return clips


def make_crops(clips: list[np.ndarray], samples: int, batch_size: int) -> list[np.ndarray]:
    """Non-overlapping ``samples``-long crops of every clip (a shorter clip gives one
    zero-padded crop), stacked into ``[batch_size, samples]`` float32 batches."""
    crops = []
    for clip in clips:
        if len(clip) < samples:
            crops.append(np.pad(clip, (0, samples - len(clip))))
        else:
            crops.extend(clip[i * samples : (i + 1) * samples] for i in range(len(clip) // samples))
    return [
        np.stack(crops[i : i + batch_size]).astype(np.float32)
        for i in range(0, len(crops), batch_size)
    ]


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--wuw-clips", type=int, default=150, help="clips from wuw_corpus_ii")
    parser.add_argument("--libri-clips", type=int, default=50, help="clips from librispeech_1utt")
    parser.add_argument("--crop-seconds", type=float, default=2.0, help="batched crop length")
    parser.add_argument("--batch-size", type=int, default=32, help="crops per batch")
    parser.set_defaults(repeats=7)
    args = parser.parse_args(argv)
    env = _common.environment()

    clips = choose_clips(
        args.data,
        {"wuw_corpus_ii": args.wuw_clips, "librispeech_1utt": args.libri_clips},
        args.seed,
    )
    clip_seconds = sum(len(c) for c in clips) / SAMPLE_RATE
    batches = make_crops(clips, int(args.crop_seconds * SAMPLE_RATE), args.batch_size)
    num_crops = sum(len(b) for b in batches)
    crop_seconds = num_crops * args.crop_seconds
    print(
        f"{len(clips)} clips, {clip_seconds:.0f} s of audio; {num_crops} crops of "
        f"{args.crop_seconds:g} s in {len(batches)} batches of <= {args.batch_size}"
    )

    layer = LogMel(
        **_common.LOGMEL_PARAMS, window="hann", normalize="mean", center=True, pad_mode="constant"
    )
    librosa_logmel = _common.librosa_logmel

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def ours_single(waveform):
        return layer(waveform[None, :])[0]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def ours_batch(waveforms):
        return layer(waveforms)

    def ours_per_clip():
        return [ours_single(c).numpy() for c in clips]

    @_common.single_threaded_blas
    def librosa_per_clip():
        return [librosa_logmel(c) for c in clips]

    def ours_batched():
        return [ours_batch(b).numpy() for b in batches]

    @_common.single_threaded_blas
    def librosa_per_crop():
        return [librosa_logmel(crop) for b in batches for crop in b]

    @_common.single_threaded_blas
    def librosa_whole_batch():
        return [librosa_logmel(b) for b in batches]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def trivial(waveform):
        return waveform * 2.0

    # Warm-up (not timed): tracing both signatures, librosa's first calls; and a check
    # that both compute the same features.
    max_diff = max(
        float(np.max(np.abs(ours_single(c).numpy() - librosa_logmel(c)))) for c in clips[:10]
    )
    ours_batch(batches[0]).numpy(), ours_batch(batches[-1]).numpy()
    librosa_logmel(batches[0])

    # Fixed cost of one tf.function call + .numpy() here, whatever the work inside.
    trivial(clips[0]).numpy()
    call_seconds = min(
        _common.timed(lambda: [trivial(c).numpy() for c in clips])[0] for _ in range(3)
    ) / len(clips)

    print(f"timing, {args.repeats} repeats (seconds per pass):")
    times = _common.repeat_paired(
        {
            "ours per clip": ours_per_clip,
            "librosa per clip": librosa_per_clip,
            "ours batched": ours_batched,
            "librosa per crop": librosa_per_crop,
            "librosa whole batch": librosa_whole_batch,
        },
        args.repeats,
    )

    def row(name, seconds, baseline):
        t = times[name]
        ratio = (
            "1 (baseline)"
            if name == baseline
            else f"{_common.paired_ratio(times[baseline], t):.2f}"
        )
        return [
            name,
            f"{seconds:.0f}",
            _common.median(t),
            _common.spread(t),
            seconds / _common.median(t),
            ratio,
        ]

    headers = [
        "path",
        "audio s",
        "median wall s",
        "wall s min-max",
        "x real time",
        "throughput vs librosa (median of paired ratios)",
    ]
    rows = [
        row("librosa per clip", clip_seconds, "librosa per clip"),
        row("ours per clip", clip_seconds, "librosa per clip"),
        row("librosa per crop", crop_seconds, "librosa per crop"),
        row("librosa whole batch", crop_seconds, "librosa per crop"),
        row("ours batched", crop_seconds, "librosa per crop"),
    ]
    ratio_clip = _common.paired_ratio(times["librosa per clip"], times["ours per clip"])
    ratio_batch = _common.paired_ratio(times["librosa per crop"], times["ours batched"])
    met_clip = "met" if ratio_clip >= 2 else "NOT met"
    met_batch = "met" if ratio_batch >= 2 else "NOT met"
    call_share = call_seconds * len(clips) / _common.median(times["ours per clip"])
    body = f"""
{len(clips)} real clips ({args.wuw_clips} `wuw_corpus_ii` + {args.libri_clips} \
`librispeech_1utt`, seed {args.seed}), {clip_seconds:.0f} s of 16 kHz audio; batched: \
{num_crops} crops of {args.crop_seconds:g} s, {args.batch_size} per batch. 64 mels, n_fft 512, \
win 400, hop 160, hann, 20-7600 Hz, centred, zero pad, log(+1e-6), mean norm. \
{args.repeats} repeats, decoding and warm-up not timed.

{_common.table(headers, rows)}

Target (>= 2x librosa): per clip **{ratio_clip:.2f}x** ({met_clip}), \
batched **{ratio_batch:.2f}x** ({met_batch}). \
Max |ours - librosa| on 10 clips: {max_diff:.1e} (same features). \
Fixed cost of one `tf.function` call (trivial body, same signature, with `.numpy()`): \
{call_seconds * 1e3:.2f} ms, i.e. {call_share:.0%} \
of "ours per clip".
"""
    _common.finish(args, "logmel", "LogMel layer vs librosa (`bench/bench_logmel.py`)", env, body)


if __name__ == "__main__":
    main()
