"""Helpers shared by the benchmark scripts in ``bench/``.

* :func:`environment` describes where and how a result was measured (CPU model, cores,
  load, date, library versions, the exact command line);
* :func:`timed` / :func:`repeat_paired` time callables; comparisons are ratios against a
  baseline timed in the same repetition, and the median over repetitions is reported,
  because the machines these run on are shared and noisy;
* :func:`table` renders a result table as Markdown (printed and recorded alike);
* :func:`record_section` replaces (or appends) one script's section of ``RESULTS.md``.

Import this module before TensorFlow: it quiets TensorFlow's C++ start-up logging as the
commands do (:func:`keras_spkid.errors.quiet_tensorflow`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

from keras_spkid.errors import quiet_tensorflow

quiet_tensorflow()

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"

RESULTS_HEADER = """\
# Benchmark results

Recorded by the scripts in `bench/` when run with `--record` (`bench/run_all` runs them
all). Each script owns one section below, between its `<!-- bench:NAME -->` markers, and
replaces it on every recorded run; edit the text outside the markers only.

Conventions:

* Throughput of audio processing is given as **x real time**: seconds of audio processed
  per second of wall-clock time (so 300x means an hour of audio in 12 s).
* Every comparison is a **ratio against a baseline measured in the same run**, in the same
  repetition, interleaved with the measured code; each timing is repeated a few times and
  the **median** is reported (times and ratios alike), with the min-max of the repeats.
  The machines are shared and noisy: absolute numbers move by tens of percent between
  runs, and ratios move too when other processes compete for the cores (TensorFlow uses
  every core, the baselines one), so read each section with its load average.
* NumPy/librosa baselines run with one BLAS thread (as fast as the default on an idle
  machine, and not 2-3x slower when another process is busy); TensorFlow keeps its
  default thread pools.
* Warm-up (TensorFlow tracing, librosa/numba compilation, filling the page cache) is done
  first and is never timed.
* Each section records the machine, date, library versions and the exact command, so a
  number can be reproduced or rejected. None of this is a test: no test asserts timings.
"""


# --------------------------------------------------------------------------- CLI
def base_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the flags every benchmark shares (``--data``, ``--repeats``,
    ``--record``, ``--seed``)."""
    parser = argparse.ArgumentParser(
        description=description.strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("SPKID_DATA"),
        help="data root holding wuw_corpus_ii/ and librispeech_1utt/ (default: $SPKID_DATA)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed repetitions of every measurement (the median is reported)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"replace this script's section of {RESULTS.relative_to(REPO_ROOT)}",
    )
    return parser


# ------------------------------------------------------------------ environment
def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo``, with its family, model and widest vector
    extension (the model name alone, "AMD EPYC", hides machines whose ratios differ;
    falls back to ``platform.processor()``)."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if key.strip() == "flags":
                break
        flags = set(fields.get("flags", "").split())
        vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        if "model name" in fields:
            return (
                f"{fields['model name']} (family {fields.get('cpu family', '?')} model "
                f"{fields.get('model', '?')}, {vector})"
            )
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_line() -> str:
    """The command as typed from the repository root (interpreter path made relative)."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(REPO_ROOT)
    except ValueError:
        pass
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO_ROOT)
    except ValueError:
        pass
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def environment() -> dict[str, str]:
    """Machine, load, date, versions and command of this run, as ``{label: value}``."""
    versions = {"python": platform.python_version()}
    for module in ("tensorflow", "keras", "librosa", "numpy", "soxr", "soundfile", "numba"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    threads = {
        k: os.environ[k]
        for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
        if k in os.environ
    }
    return {
        "machine": (
            f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
        ),
        "load average at start (1/5/15 min)": load,
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "threads": (", ".join(f"{k}={v}" for k, v in threads.items()) or "TensorFlow defaults")
        + "; NumPy/librosa baselines with 1 BLAS thread (threadpoolctl)",
        "command": f"`{command_line()}`",
    }


# ----------------------------------------------------------------------- timing
def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """``(wall seconds, result)`` of one call of ``fn``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def repeat_paired(functions: dict, repeats: int, log=print) -> dict[str, list[float]]:
    """Time every callable of ``functions`` once per repetition, interleaved.

    Within a repetition the callables run in the given order, so the baseline and the
    measured code see the same machine load; ``ratios`` can then pair them up.

    Returns:
        ``{name: [seconds of repetition 0, 1, ...]}``.
    """
    times = {name: [] for name in functions}
    for rep in range(repeats):
        for name, fn in functions.items():
            seconds, _ = timed(fn)
            times[name].append(seconds)
        if log:
            log(
                f"  repeat {rep + 1}/{repeats}: "
                + ", ".join(f"{name} {times[name][-1]:.3f} s" for name in functions)
            )
    return times


def median(values) -> float:
    return statistics.median(values)


def paired_ratio(baseline: list[float], ours: list[float]) -> float:
    """Median over repetitions of ``baseline time / our time`` (> 1: we are faster)."""
    return statistics.median(b / o for b, o in zip(baseline, ours))


def fmt(value: float) -> str:
    """A number for a table: integers from 100 up, else 3 significant digits."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def spread(values) -> str:
    """``min-max`` of a list of timings or rates, to show how noisy repetitions were."""
    return f"{fmt(min(values))}-{fmt(max(values))}"


# -------------------------------------------------------------------- baselines
LOGMEL_PARAMS = dict(
    sample_rate=16000,
    n_mels=64,
    n_fft=512,
    win_length=400,
    hop_length=160,
    fmin=20.0,
    fmax=7600.0,
    log_offset=1e-6,
)
"""The front-end parameters every benchmark uses (``LogMel`` keyword arguments)."""


def single_threaded_blas(fn):
    """``fn`` run with one BLAS thread (threadpoolctl), for NumPy/librosa baselines.

    librosa's mel projection is a BLAS matrix product, and OpenBLAS's default of one
    thread per core makes it 2-3x slower as soon as another process is busy on a 2-core
    machine (its threads spin-wait for each other), while on an idle machine one thread
    is just as fast. Pinning the baseline to one thread keeps it honest and stable;
    TensorFlow keeps its own default thread pools.
    """
    from threadpoolctl import threadpool_limits

    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    wrapper.__name__ = getattr(fn, "__name__", "baseline")
    return wrapper


def librosa_logmel(y, n_mels: int = LOGMEL_PARAMS["n_mels"]):
    """The librosa baseline of ``LogMel(**LOGMEL_PARAMS)``: ``[..., samples]`` float32
    to mean-normalised log-mel ``[..., frames, n_mels]`` (Hann window, centred frames,
    zero padding, Slaney mel scale and norm, ``log(mel + 1e-6)``, mean over time removed).
    """
    import librosa
    import numpy as np

    p = LOGMEL_PARAMS
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=p["sample_rate"],
        n_fft=p["n_fft"],
        win_length=p["win_length"],
        hop_length=p["hop_length"],
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=n_mels,
        fmin=p["fmin"],
        fmax=p["fmax"],
    )
    logmel = np.log(mel + p["log_offset"])
    logmel -= logmel.mean(axis=-1, keepdims=True)
    return np.swapaxes(logmel, -1, -2)


# ------------------------------------------------------------------------ output
def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; floats are shown with 3 significant digits (or as integers)."""

    def cell(value):
        return fmt(value) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_section(title: str, env: dict[str, str], body: str) -> str:
    """Markdown of one result: title, environment list, then the body (tables, notes)."""
    env_lines = "\n".join(f"- {label}: {value}" for label, value in env.items())
    return f"## {title}\n\n{env_lines}\n\n{body.strip()}\n"


def record_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section ``name`` of ``RESULTS.md`` with ``text`` (append if new).

    Sections live between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers;
    the file is created with :data:`RESULTS_HEADER` when missing, and rewritten
    atomically (other sections and hand-written text are kept).
    """
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    current = path.read_text(encoding="utf-8") if path.is_file() else RESULTS_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, path)
    print(f"recorded section '{name}' in {path}")


def finish(args, name: str, title: str, env: dict[str, str], body: str) -> None:
    """Print the result; with ``--record``, also write it into ``RESULTS.md``."""
    text = render_section(title, env, body)
    print()
    print(text)
    if args.record:
        record_section(name, text)
