"""Gradio demo latency: from a 5 s clip to the answer, on the server, model warm.

What is measured, on one 5 s clip of a real LibriSpeech reader stored as the browser's
recorder delivers it (48 kHz int16 stereo WAV), against a gallery of ``--people``
test-split readers enrolled from three 3 s clips each, with the built-in model loaded once:

* **Identify handler**: what the Identify tab does per click, server side:
  :meth:`SpeakerService.identify` on the file (decode, 48 -> 16 kHz mono, length and
  speech checks, embedding, top-5 search, threshold) plus the answer line and the bar
  chart's table;
* **clip to 16 kHz + checks**: the decoding and checking part of it alone;
* **Live update**: one update of the Live tab, i.e. five 0.1 s chunks of 48 kHz stereo
  pushed into a warm :class:`LiveListener` (stream resampling, VAD) and the speech of its
  2.5 s window identified;
* **through Gradio**: the Identify endpoint called with ``gradio_client`` on a demo served
  in this process on 127.0.0.1 (file upload, queue, handler, answer): the overhead the
  page adds on one machine.

Baseline, timed in the same repetition: the raw model call alone on the same 5 s at
16 kHz (a warm ``tf.function``), so each ratio says how much the demo adds around the
network. Times are per call, median over repetitions of ``--calls`` calls.

Why: the issue asks for an answer within 300 ms of a 5 s clip on CPU.

Run: ``.venv/bin/python bench/bench_demo.py [--record]``
"""

from __future__ import annotations

import random
import socket
import tempfile
from pathlib import Path

import _common  # first: it quiets TensorFlow's start-up logging
import numpy as np
import soundfile
import soxr
import tensorflow as tf

from keras_spkid.app.clips import clip_waveform
from keras_spkid.app.live import LiveListener
from keras_spkid.app.service import SpeakerService
from keras_spkid.app.ui import build_demo, describe_identification, launch, scores_frame
from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.data.corpora import load_corpus
from keras_spkid.inference.model_io import load_embedding_model

BROWSER_RATE = 48000
TARGET_MS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_browser(x: np.ndarray) -> np.ndarray:
    """16 kHz float -> 48 kHz int16 stereo ``[n, 2]``, as a browser recording."""
    pcm = np.round(np.clip(soxr.resample(x, SAMPLE_RATE, BROWSER_RATE), -1, 1) * 32767)
    return np.repeat(pcm.astype(np.int16)[:, None], 2, axis=1)


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--people", type=int, default=10, help="enrolled readers")
    parser.add_argument("--calls", type=int, default=20, help="calls per timed repetition")
    parser.set_defaults(repeats=5)
    parser.add_argument(
        "--model",
        default="conv6",
        help="preset or .keras file (the recorded results are conv6's; the built-in default "
        "is campplus_zh_en)",
    )
    args = parser.parse_args(argv)
    env = _common.environment()
    env["model"] = args.model
    folder = Path(tempfile.mkdtemp(prefix="bench_demo_"))

    catalogue = load_corpus("librispeech_1utt", args.data)
    long_enough = sorted(
        (u for u in catalogue if u.split == "test" and u.seconds >= 14.0), key=lambda u: u.speaker
    )
    readers = random.Random(args.seed).sample(long_enough, args.people)
    model = load_embedding_model(args.model)
    service = SpeakerService(model, folder / "people.npz")
    segment = 3 * SAMPLE_RATE
    for utterance in readers:
        x = load_audio(catalogue.abspath(utterance))
        service.enrol(
            f"reader {utterance.speaker}",
            [(SAMPLE_RATE, x[i * segment : (i + 1) * segment]) for i in range(3)],
        )
    query16 = load_audio(catalogue.abspath(readers[0]))[9 * SAMPLE_RATE : 14 * SAMPLE_RATE]
    query_file = folder / "query.wav"
    soundfile.write(query_file, as_browser(query16), BROWSER_RATE, subtype="PCM_16")

    raw_call = tf.function(lambda x: model.model(x, training=False))
    batch = tf.constant(query16[None])

    def raw_model():
        for _ in range(args.calls):
            raw_call(batch).numpy()

    def handler():
        for _ in range(args.calls):
            result = service.identify(str(query_file))
            describe_identification(result), scores_frame(result, result.threshold)

    def decode_and_check():
        for _ in range(args.calls):
            clip_waveform(str(query_file), "query")

    stream = as_browser(np.tile(query16, 2 + args.calls * args.repeats // 10 + 2))
    chunks = iter(
        [
            stream[i : i + BROWSER_RATE // 10]
            for i in range(0, len(stream) - BROWSER_RATE // 10 + 1, BROWSER_RATE // 10)
        ]
    )
    listener = LiveListener()

    def live_update():
        update = None
        while update is None:  # five chunks per update
            update = service.live(listener, BROWSER_RATE, next(chunks))
        return update

    def live():
        for _ in range(args.calls):
            live_update()

    from gradio_client import Client, handle_file

    demo = build_demo(service)
    launch(demo, "127.0.0.1", free_port(), block=False)
    client = Client(demo.local_url, verbose=False)

    def through_gradio():
        for _ in range(args.calls):
            client.predict(handle_file(str(query_file)), api_name="/identify")

    answer = describe_identification(service.identify(str(query_file)))
    # warm-up, not timed: tracing for every input length, Gradio's first requests
    for fn in (raw_model, handler, decode_and_check, through_gradio):
        fn()
    for _ in range(5):  # fills the 2.5 s window
        live_update()
    live()

    print(f"timing, {args.repeats} repeats of {args.calls} calls:")
    functions = {
        "raw model call": raw_model,
        "Identify handler": handler,
        "clip to 16 kHz + checks": decode_and_check,
        "Live update": live,
        "through Gradio": through_gradio,
    }
    times = _common.repeat_paired(functions, args.repeats)
    demo.close()

    def row(name):
        per_call = [t / args.calls * 1e3 for t in times[name]]
        ratio = (
            "1 (baseline)"
            if name == "raw model call"
            else f"{1 / _common.paired_ratio(times['raw model call'], times[name]):.2f}"
        )
        return [name, _common.median(per_call), _common.spread(per_call), ratio]

    headers = [
        "path (5 s clip)",
        "median ms per call",
        "ms min-max",
        "time / raw model call (median of paired ratios)",
    ]
    handler_ms = _common.median(times["Identify handler"]) / args.calls * 1e3
    gradio_ms = _common.median(times["through Gradio"]) / args.calls * 1e3
    live_ms = _common.median(times["Live update"]) / args.calls * 1e3
    body = f"""
Query: 5 s of LibriSpeech reader {readers[0].speaker} (9-14 s of the clip) as a 48 kHz int16 \
stereo WAV; gallery: {args.people} readers (seed {args.seed}) enrolled from 3 x 3 s each; \
built-in model, loaded once. {args.repeats} repeats of {args.calls} calls, warm-up not timed. \
The answer (the interim model; the speaker is reader {readers[0].speaker}): "{answer}".

{_common.table(headers, [row(name) for name in functions])}

Target (<= {TARGET_MS} ms from a 5 s clip to the answer, server side): Identify handler \
**{handler_ms:.0f} ms** ({"met" if handler_ms <= TARGET_MS else "NOT met"}); through \
Gradio on 127.0.0.1 with the upload **{gradio_ms:.0f} ms** \
({"met" if gradio_ms <= TARGET_MS else "NOT met"}). A Live update (0.5 s of new audio, \
the speech of a 2.5 s window) takes **{live_ms:.0f} ms**, \
{"well within" if live_ms < 250 else "NOT within half of"} the 500 ms of audio it covers.
"""
    _common.finish(args, "demo", "Gradio demo latency (`bench/bench_demo.py`)", env, body)


if __name__ == "__main__":
    main()
