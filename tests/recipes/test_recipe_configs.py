"""The recipes' training runs are one config file plus overrides, and the same runs as before.

Each recipe runs in a copy of ``recipes/`` with ``SPKID_PYTHON`` set to a recorder that only
writes down its arguments (and makes the ``--log-dir`` folder, where ``fewshot_wuw.sh``
tees its test results), so bash expands every variable as in a real run and nothing trains.
Every recorded training command is parsed by the trainer's real parser, ``--config``
loaded by the real config loader, and compared field by field with the flag list the
recipe passed before it had config files (copied below from the recipes of commit
55d463f, the shell variables replaced by the values the test gives them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keras_spkid.cli.config_args import config_from_args
from keras_spkid.cli.train import parse_args
from keras_spkid.training.config import ClassifierConfig, MAEConfig, ProtonetConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {"protonet": ProtonetConfig, "mae": MAEConfig, "classifier": ClassifierConfig}
TRAINERS = {
    ("train_protonet.py",): "protonet",
    ("train_mae.py",): "mae",
    ("train_classifier.py",): "classifier",
    ("-m", "keras_spkid.cli.main", "train-protonet"): "protonet",
    ("-m", "keras_spkid.cli.main", "train-mae"): "mae",
    ("-m", "keras_spkid.cli.main", "train-classifier"): "classifier",
}
RECORDER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["RECIPE_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if "--log-dir" in args:
    os.makedirs(args[args.index("--log-dir") + 1], exist_ok=True)
"""

# ------------------------------------------------ the flag lists before recipes/configs/

DEFAULT_MODEL_COMMON = (
    "--train-corpora wuw_corpus_ii librispeech_1utt --val-corpora wuw_corpus_ii "
    "--test-corpora wuw_corpus_ii --segment-frames 200 --batch-size 1 "
    "--support-frames 200 --variable-query --min-query-frames 100 --loss proto_cosine "
    "--gc-weight 1.0 --quiet"
)
DEFAULT_MODEL = [
    ("protonet", f"{DEFAULT_MODEL_COMMON} --num-way 5 --num-support 5 --num-query 5 "
     "--query-frames 100 --test-interval 200 --print-interval 20 --val-tasks 100 "
     "--seed 0 --num-train-iterations 1200 --log-dir runs/protonet_gc"),
    ("protonet", f"{DEFAULT_MODEL_COMMON} --num-way 5 --num-support 5 --num-query 5 "
     "--query-frames 100 --test-interval 250 --print-interval 50 --val-tasks 100 "
     "--seed 1 --num-train-iterations 4000 --spec-augment --learning-rate 0.0005 "
     "--init-from runs/protonet_gc/best/model.keras --log-dir runs/default_candidate"),
    ("protonet", f"{DEFAULT_MODEL_COMMON} --num-way 10 --num-support 3 --num-query 2 "
     "--query-frames 200 --test-interval 500 --print-interval 50 --val-tasks 200 "
     "--seed 2 --num-train-iterations 12000 --spec-augment --channel-augment "
     "--learning-rate 0.0003 --init-from runs/default_candidate/best/model.keras "
     "--log-dir runs/default_v2"),
]  # fmt: skip

FEWSHOT_DATA = (
    "--train-corpora wuw_corpus_ii librispeech_1utt --val-corpora wuw_corpus_ii "
    "--test-corpora wuw_corpus_ii --segment-frames 200"
)
FEWSHOT_EPISODE = (
    "--num-way 5 --num-support 5 --num-query 5 --batch-size 1 --support-frames 200 "
    "--query-frames 100 --test-interval 200 --print-interval 20 --val-tasks 100 --seed 0"
)


def _fewshot_wuw(steps: int) -> list[tuple[str, str]]:
    def evaluate(run, flags):
        return ("protonet", f"{FEWSHOT_DATA} --num-query 5 --query-frames 100 "
                f"--test-tasks 1000 --log-dir runs/{run} --test {flags}")  # fmt: skip

    protonet = f"{FEWSHOT_DATA} {FEWSHOT_EPISODE} --num-train-iterations {steps}"
    return [
        ("mae", "--train-corpora wuw_corpus_ii librispeech_1utt --mask strips "
         "--mask-ratio 0.75 --batch-size 32 --num-train-iterations 600 --test-interval 200 "
         "--crop-frames 192 --log-dir runs/mae_strips --quiet"),
        ("protonet", f"{protonet} --log-dir runs/protonet --quiet"),
        ("protonet", f"{protonet} --init-from runs/mae_strips/best/model.keras "
         "--log-dir runs/protonet_mae --quiet"),
        ("protonet", f"{protonet} --loss proto_cosine --gc-weight 1.0 --variable-query "
         "--min-query-frames 100 --log-dir runs/protonet_gc --quiet"),
        ("classifier", "--train-corpora wuw_corpus_ii librispeech_1utt "
         "--val-corpora wuw_corpus_ii --segment-frames 200 --encoder sacnn --loss softmax "
         "--speakers-per-batch 32 --clips-per-speaker 1 --frames 200 "
         "--num-train-iterations 400 --test-interval 100 --val-tasks 100 "
         "--log-dir runs/sacnn_softmax --quiet"),
        *[evaluate(run, f"--num-support {shot} --loss proto")
          for run in ("protonet", "protonet_mae") for shot in (1, 5)],
        *[evaluate("protonet_gc", f"--num-support {shot} --loss proto_cosine")
          for shot in (1, 5)],
        *[evaluate("sacnn_softmax", f"--num-support {shot} --loss proto_cosine "
                   "--model runs/sacnn_softmax/best/model.keras") for shot in (1, 5)],
    ]  # fmt: skip


def _quickstart(manifest, out, steps=300, way=5, shot=5, query=5, val_tasks=100):
    return [
        ("protonet", f"--train-corpora {manifest} --val-corpora {manifest} "
         f"--test-corpora {manifest} --cache {out}/cache --num-way {way} --num-support {shot} "
         f"--num-query {query} --batch-size 1 --support-frames 200 --query-frames 100 "
         f"--loss proto_cosine --gc-weight 1.0 --num-train-iterations {steps} "
         f"--test-interval {(steps + 2) // 3} --print-interval {(steps + 9) // 10} "
         f"--val-tasks {val_tasks} --seed 0 --log-dir {out}/protonet"),
    ]  # fmt: skip


# ------------------------------------------------------------------------- helpers


def _run_recipe(tmp_path, name, args=(), **env):
    """The training commands ``recipes/<name>`` runs: ``[(kind, flags)]``, in order."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "recipes", repo / "recipes")
    recorder = tmp_path / "python"
    recorder.write_text(RECORDER.format(python=sys.executable))
    recorder.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QUICKSTART_")}
    result = subprocess.run(
        ["bash", str(repo / "recipes" / name), *map(str, args)],
        capture_output=True,
        text=True,
        env={**environ, "SPKID_PYTHON": str(recorder), "RECIPE_CALLS": str(calls), **env},
    )
    assert result.returncode == 0, result.stderr
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    commands = []
    for argv in recorded:
        for prefix, kind in TRAINERS.items():
            if tuple(argv[: len(prefix)]) == prefix:
                commands.append((kind, argv[len(prefix) :]))
    return repo, commands


def _parsed(kind, flags):
    args = parse_args(kind, CONFIGS[kind], flags)
    return args, config_from_args(args, CONFIGS[kind])


def _check_same_runs(repo, commands, before, monkeypatch):
    monkeypatch.chdir(repo)  # the recipes name their config files from the repository root
    assert len(commands) == len(before)
    for (kind, flags), (old_kind, old_flags) in zip(commands, before):
        assert kind == old_kind
        config_file = flags[flags.index("--config") + 1]
        assert config_file.startswith("recipes/configs/") and (repo / config_file).is_file()
        new_args, new = _parsed(kind, flags)
        old_args, old = _parsed(kind, shlex.split(old_flags))
        differences = {
            field: (getattr(old, field), getattr(new, field))
            for field in (f.name for f in dataclasses.fields(new))
            if getattr(old, field) != getattr(new, field)
        }
        assert not differences, f"{shlex.join(flags)}: (before, now) {differences}"
        # and so do the flags outside the config (--test, --model, --quiet, ...)
        old_vars, new_vars = vars(old_args), vars(new_args)
        assert new_vars.keys() == old_vars.keys()
        others = {
            name: (value, new_vars[name])
            for name, value in old_vars.items()
            if name != "config" and new_vars[name] != value
        }
        assert not others, f"{shlex.join(flags)}: (before, now) {others}"


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("args", [(), ("--skip-training",)])
def test_default_model_stages_are_the_same_runs(tmp_path, monkeypatch, args):
    repo, commands = _run_recipe(tmp_path, "default_model.sh", args)
    _check_same_runs(repo, commands, [] if args else DEFAULT_MODEL, monkeypatch)


@pytest.mark.parametrize("steps", [None, 37])
def test_fewshot_wuw_runs_are_the_same_runs(tmp_path, monkeypatch, steps):
    args = () if steps is None else (steps,)
    repo, commands = _run_recipe(tmp_path, "fewshot_wuw.sh", args)
    _check_same_runs(repo, commands, _fewshot_wuw(steps or 1200), monkeypatch)


@pytest.mark.parametrize(
    "sizes", [{}, {"steps": 50, "way": 3, "shot": 1, "query": 2, "val_tasks": 4}]
)
def test_quickstart_training_is_the_same_run(tmp_path, monkeypatch, sizes):
    data = (tmp_path / "data").resolve()
    data.mkdir()
    (data / "MANIFEST.tsv").write_text(
        "speaker\tpath\tsplit\n"
        + "".join(f"s{i}\ts{i}/{j}.wav\t{split}\n" for i, split in enumerate(
            ("train", "dev", "test")) for j in range(2))
    )  # fmt: skip
    out = (tmp_path / "out").resolve()
    env = {f"QUICKSTART_{key.upper()}": str(value) for key, value in sizes.items()}
    repo, commands = _run_recipe(tmp_path, "quickstart.sh", (data, out), **env)
    before = _quickstart(data / "MANIFEST.tsv", out, **sizes)
    _check_same_runs(repo, commands, before, monkeypatch)


def test_every_config_file_is_used_by_a_recipe():
    recipes = "".join(path.read_text() for path in (REPO / "recipes").glob("*.sh"))
    configs = sorted((REPO / "recipes" / "configs").glob("*.json"))
    assert configs
    for path in configs:
        assert path.name in recipes, f"{path}: no recipe uses it"
