"""One flag style across every command: help and defaults, aliases, one-line errors."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from keras_spkid.app import default_gallery
from keras_spkid.cli import celeb, embed, main, train
from keras_spkid.training.progress import PlainProgress, progress_bar

REPO = Path(__file__).resolve().parents[2]


def _demo_parser():
    spec = importlib.util.spec_from_file_location("gradio_demo", REPO / "apps" / "gradio_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def _all_parsers():
    """``{command: parser}`` for every command and subcommand a user can run."""
    found = {}

    def walk(name, parser):
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(f"{name} {sub_name}", sub)

    walk("spkid", main.build_parser())
    for kind in ("protonet", "mae", "classifier"):
        walk(f"train-{kind}", train.build_parser(kind))
    walk("extract-embeds", embed.build_parser())
    walk("closest-celeb", celeb.build_parser())
    walk("gradio_demo", _demo_parser())
    walk("default-gallery", default_gallery.build_parser())  # recipes/default_gallery.sh
    return found


def test_every_flag_has_help_a_default_and_the_hyphen_style():
    parsers = _all_parsers()
    assert {"spkid eval fewshot", "spkid download youtube", "train-protonet"} <= set(parsers)
    for name, parser in parsers.items():
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            first = action.option_strings[-1 if action.option_strings[0] == "-v" else 0]
            assert action.help, f"{name} {first}: no help"
            assert "_" not in first, f"{name} {first}: underscore spelling shown first"
        text = parser.format_help()
        if name == "train-protonet":
            assert "(default: 5)" in text and "--num-way NUM_WAY (also --nb-class-train)" in text


def test_old_and_reference_spellings_are_aliases():
    parser = train.build_parser("protonet")
    args = parser.parse_args(
        ["--num_way", "3", "--num-support", "2", "--n_query", "4", "--use_GC", "True"]
        + ["--use_variable", "False", "--spec_augment", "--learning_rate=0.01"]
    )
    assert (args.num_way, args.num_support, args.num_query) == (3, 2, 4)
    assert args.use_gc is True and args.variable_query is False and args.spec_augment is True
    assert args.learning_rate == 0.01
    metasr = parser.parse_args(
        ["--use_cuda", "True", "--gpu", "0", "--n_folder", "0", "--data_type", "vox2"]
        + ["--use_checkpoint", "False", "--cp_num", "100", "--loss_type", "prototypical"]
    )
    assert (metasr.use_cuda, metasr.use_checkpoint, metasr.cp_num) == (True, False, "100")
    mae = train.build_parser("mae").parse_args(["--num_iterations", "7", "--mask_ratio", "0.5"])
    assert mae.num_train_iterations == 7 and mae.mask_ratio == 0.5
    spkid = main.build_parser()
    for spelling in ("--num_way", "--num-way"):
        assert spkid.parse_args(["episodes", "--corpus", "x", spelling, "7"]).num_way == 7
    youtube = spkid.parse_args(
        ["download", "youtube", "--url-directory", "u", "--audio-directory", "a"]
        + ["--output-dir", "s"]
    )
    assert (youtube.txt, youtube.out, youtube.output_directory) == (["u"], "a", "s")


@pytest.mark.parametrize(
    "parser, argv, flag",
    [
        ("celeb", ["query", "--gallery", "g", "--audio", "a", "--top_k", "0"], "--top-k"),
        ("celeb", ["query", "--gallery", "g", "--audio", "a", "--top_k", "-3"], "--top-k"),
        ("celeb", ["query", "--gallery", "g", "--audio", "a", "--crops", "-1"], "--crops"),
        (
            "celeb",
            ["build", "--embeddings", "e", "--output", "o", "--threshold", "nan"],
            "--threshold",
        ),  # fmt: skip
        ("embed", ["--crops", "-1"], "--crops"),
        ("embed", ["--crop_seconds", "0"], "--crop-seconds"),
        ("embed", ["--chunk_size", "0"], "--chunk-size"),
        ("embed", ["--workers", "-1"], "--workers"),
        ("spkid", ["eval", "verify", "--trials", "t", "--test_seconds", "-1"], "--test-seconds"),
        ("spkid", ["eval", "knn", "--metric", "nosuch"], "--metric"),
        ("spkid", ["features", "--corpus", "x", "--n-mels", "100000"], "--n-mels"),
        ("spkid", ["features", "--corpus", "x", "--workers", "-1"], "--workers"),
        ("protonet", ["--n_mels", "100000"], "--n-mels"),
        ("protonet", ["--learning_rate", "nan"], "--learning-rate"),
        ("demo", ["--port", "99999"], "--port"),
    ],
)
def test_bad_numbers_are_one_line_naming_the_flag(parser, argv, flag, tmp_path, capsys):
    if parser == "embed":
        argv = ["--input", str(tmp_path), "--output", str(tmp_path / "o.npz"), *argv]
    build = {
        "celeb": celeb.build_parser,
        "embed": embed.build_parser,
        "spkid": main.build_parser,
        "protonet": lambda: train.build_parser("protonet"),
        "demo": _demo_parser,
    }[parser]
    with pytest.raises(SystemExit) as exit_info:
        build().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument ") and err.count("\n") == 1 and flag in err


def test_output_that_cannot_be_written_is_refused_before_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for output, message in (
        (blocker / "sub" / "out.npz", "it is a file"),  # a file where a folder should be
        (tmp_path, "is a folder"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            embed.main(["--input", str(tmp_path), "--output", str(output)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--output" in err and message in err and err.count("\n") == 1


def test_catalogue_output_in_a_missing_folder_creates_it(shared_data, tmp_path):
    out = tmp_path / "new" / "folder" / "MANIFEST.tsv"
    assert main.main(["catalogue", "--corpus", "fsdd", "--output", str(out)]) == 0
    assert out.read_text().startswith("speaker\tpath")


def test_trainer_checks_before_work(shared_data, tmp_path, capsys):
    log_dir = tmp_path / "run"
    cache = tmp_path / "cache"
    common = ["--log_dir", str(log_dir), "--cache", str(cache), "--quiet"]
    assert train.protonet_main(["--num_way", "500", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --num-way 500") and "146 speakers" in err
    not_a_model = tmp_path / "weights.pt"
    not_a_model.write_bytes(b"not a model")
    assert train.protonet_main(["--pretrained_weights", str(not_a_model), *common]) == 2
    assert "--init-from" in capsys.readouterr().err
    for name, files in (  # zips that only look like a .keras: were a traceback at the start
        ("config_not_json.keras", {"config.json": "not json", "model.weights.h5": "x"}),
        ("no_weights.keras", {"config.json": '{"class_name": "Functional"}'}),
    ):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for member, text in files.items():
                archive.writestr(member, text)
        assert train.protonet_main(["--init_from", str(tmp_path / name), *common]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--init-from {tmp_path / name}: not a Keras model" in err
    assert train.protonet_main(["--encoder", "nosuch", *common]) == 2
    assert "--encoder nosuch: not one of" in capsys.readouterr().err
    assert train.protonet_main(["--loss_type", "softmax", *common]) == 2
    assert "train_classifier.py --loss softmax" in capsys.readouterr().err
    assert not cache.exists() and not log_dir.exists()  # nothing computed or written


def test_help_shows_every_default():
    """A flag with a default (not None, not an off switch) shows it in ``--help``."""
    missing = []
    for name, parser in _all_parsers().items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            default = action.default
            if (
                not action.option_strings
                or isinstance(action, argparse._HelpAction)
                or default in (None, False, argparse.SUPPRESS)
            ):
                continue
            shown = formatter._expand_help(action)
            value = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            if "default" not in shown or (
                f"(default: {value})" not in shown and "(default:" in shown
            ):
                missing.append(f"{name} {action.option_strings[0]}: {shown!r} ({default!r})")
    assert not missing, "\n".join(missing)


def _help_calls() -> list[tuple[str, str, str, list[str]]]:
    """``(command, module, function, argv)``: the real entry point of each command."""
    entries = {
        "spkid": ("keras_spkid.cli.main", "main"),
        "train-protonet": ("keras_spkid.cli.train", "protonet_main"),
        "train-mae": ("keras_spkid.cli.train", "mae_main"),
        "train-classifier": ("keras_spkid.cli.train", "classifier_main"),
        "extract-embeds": ("keras_spkid.cli.embed", "main"),
        "closest-celeb": ("keras_spkid.cli.celeb", "main"),
        "gradio_demo": ("apps/gradio_demo.py", "main"),
        "default-gallery": ("keras_spkid.app.default_gallery", "main"),
    }
    calls = []
    for name in _all_parsers():
        program, *words = name.split()
        calls.append((name, *entries[program], [*words, "--help"]))
    return calls


def test_help_of_every_command_imports_no_tensorflow():
    """Every command and subcommand, through its real entry point, in one interpreter."""
    script = (
        "import importlib, importlib.util, json, sys\n"
        "done = {}\n"
        "for name, module, function, argv in json.loads(sys.argv[1]):\n"
        "    if module.endswith('.py'):\n"
        "        spec = importlib.util.spec_from_file_location('entry', module)\n"
        "        entry = importlib.util.module_from_spec(spec)\n"
        "        spec.loader.exec_module(entry)\n"
        "    else:\n"
        "        entry = importlib.import_module(module)\n"
        "    try:\n"
        "        getattr(entry, function)(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    done[name] = 'tensorflow' in sys.modules\n"
        "print(json.dumps(done), file=sys.stderr)\n"
    )
    calls = _help_calls()
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(calls)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stderr.strip().splitlines()[-1])
    assert len(imported) == len(calls) >= 36, imported
    first = [name for name, done in imported.items() if done][:1]
    assert not first, f"'{first[0]} --help' imports TensorFlow"


def test_cli_modules_never_import_the_main_command():
    for path in (REPO / "keras_spkid" / "cli").glob("*.py"):
        if path.name == "main.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "keras_spkid.cli.main", f"{path.name} imports cli.main"
                if node.module == "keras_spkid.cli":
                    assert "main" not in [a.name for a in node.names], path.name


def test_progress_in_a_log_file_is_plain_lines(capsys):
    bar = progress_bar(20, verbose=True)  # stdout is captured: not a terminal
    assert isinstance(bar, PlainProgress)
    bar.update(10, [("loss", 1.5)])
    bar.update(20, [("loss", 1.25)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert out.splitlines()[1].startswith("step 20/20") and "loss: 1.2500" in out


def test_fewshot_that_no_cell_can_fill_stops_before_extracting(shared_data, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "fewshot", "--corpus", "wuw_corpus_ii", "--split", "test", "--ways", "5"]
    assert main.main([*argv, "--shots", "10", "--queries", "15", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no cell can be filled: 0 of the 35 speakers" in err and err.count("\n") == 1
    assert not out.exists()  # nothing extracted


def test_train_corpora_takes_an_audio_folder(wuw, tmp_path):
    from keras_spkid.cli.compat import _speaker_counts

    for speaker, utts in list(wuw.by_speaker().items())[:3]:
        (tmp_path / speaker).mkdir()
        for utt in utts[:4]:
            shutil.copyfile(wuw.abspath(utt), tmp_path / speaker / utt.path.replace("/", "_"))
    label, counts = _speaker_counts(str(tmp_path), "")
    assert sorted(counts.values()) == [4, 4, 4]
    with pytest.raises(Exception, match="no utterances in split 'train' .*no splits"):
        _speaker_counts(str(tmp_path), "train")


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_silenced_unless_verbose(shared_data, tmp_path):
    from keras_spkid.data.corpora import load_corpus
    from keras_spkid.inference.extract import extract_embeddings
    from keras_spkid.inference.model_io import load_embedding_model

    # a real query, on conv6 (the default CAM++ would add ~20 s of loading and tracing to
    # each run; TensorFlow prints the same start-up lines for any model)
    corpus = load_corpus("librispeech_1utt", shared_data)
    utts = list(corpus)[:2]
    embeddings, gallery = tmp_path / "e.npz", tmp_path / "gallery.npz"
    extract_embeddings(
        load_embedding_model("conv6"), [u.path for u in utts], corpus.root, embeddings,
        [u.speaker for u in utts], progress=False,
    )  # fmt: skip
    assert celeb.main(["build", "--embeddings", str(embeddings), "--output", str(gallery)]) == 0
    clip = corpus.abspath(utts[0])
    command = [sys.executable, str(REPO / "closest_celeb.py"), "query", "--model", "conv6",
               "--gallery", str(gallery), "--audio", str(clip), "--top_k", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    for noise in ("oneDNN", "cpu_feature_guard", "E0000", "absl::InitializeLog"):
        assert noise not in quiet.stderr, quiet.stderr
    verbose = command[:2] + ["--verbose"] + command[2:]  # a flag of closest_celeb.py itself
    verbose = subprocess.run(verbose, capture_output=True, text=True, env=env)
    assert verbose.returncode == 0 and len(verbose.stderr) > len(quiet.stderr)


HELP_COMMANDS = [
    ["-m", "keras_spkid.cli.main"],
    ["-m", "keras_spkid.cli.main", "eval", "fewshot"],
    ["-m", "keras_spkid.cli.main", "download", "youtube"],
    ["-m", "keras_spkid.cli.main", "features"],
    ["-m", "keras_spkid.cli.main", "export"],
    ["train_protonet.py"],
    ["train_mae.py"],
    ["train_classifier.py"],
    ["extract_embeds.py"],
    ["closest_celeb.py", "query"],
    ["apps/gradio_demo.py"],
    ["closest_celeb.py", "build"],
    ["-m", "keras_spkid.app.default_gallery"],  # recipes/default_gallery.sh
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_takes_under_a_second_of_cpu(command):
    """CPU time (not wall time, which depends on the machine's load) of ``--help``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0 and "--help" in result.stdout, result.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, f"{' '.join(command)} --help used {cpu:.2f} s of CPU"


def test_progress_bars_in_a_log_file_are_plain_lines(tmp_path):
    script = (
        "import keras_spkid.cli\n"
        "from tqdm import tqdm\n"
        "for _ in tqdm(range(3), desc='embedding', mininterval=0, miniters=1):\n"
        "    pass\n"
        "import sys; print('done', file=sys.stderr)\n"
    )
    log = tmp_path / "log.txt"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-c", script], stderr=stderr, check=True, cwd=REPO)
    text = log.read_text()
    lines = text.splitlines()
    assert "\r" not in text and "" not in lines and text.isascii(), text
    assert [line.split("|")[0].strip() for line in lines[:-1]][-1] == "embedding: 100%"
    assert len(lines) >= 3 and lines[-1] == "done"


def test_spkid_front_end_flags_are_run_config_fields_with_the_same_defaults():
    # spkid features/episodes make the cache a trainer reuses only if both build one front end
    import dataclasses

    from keras_spkid.cli.sources import frontend_from_args
    from keras_spkid.training.config import ClassifierConfig, MAEConfig, ProtonetConfig

    features = _all_parsers()["spkid features"]
    group = next(g for g in features._action_groups if g.title.startswith("front end"))
    flags = [a.dest for a in group._group_actions]
    assert len(flags) == 8
    for argv in ([], ["--fmax", "4000", "--window", "hamming"]):
        args = main.build_parser().parse_args(["features", "--corpus", "wuw_corpus_ii", *argv])
        settings = {name: getattr(args, name) for name in flags}
        assert (settings["fmax"], settings["window"]) == (
            (4000.0, "hamming") if argv else (ProtonetConfig.fmax, ProtonetConfig.window)
        )
        got = frontend_from_args(args).get_config()
        got.pop("name")
        for config_cls in (ProtonetConfig, MAEConfig, ClassifierConfig):
            assert set(flags) <= {f.name for f in dataclasses.fields(config_cls)}
            want = config_cls(**settings).frontend().get_config()
            want.pop("name")
            assert got == want, config_cls.__name__


def test_output_in_a_missing_folder_is_created(shared_data, tmp_path, capsys):
    """Issue 14: ``--output`` in a folder that does not exist was a FileNotFoundError."""
    target = tmp_path / "new" / "sub" / "MANIFEST.tsv"
    manifest = shared_data / "fsdd" / "MANIFEST.tsv"
    assert main.main(["catalogue", "--manifest", str(manifest), "--output", str(target)]) == 0
    assert target.is_file() and len(target.read_text().splitlines()) > 1
    (tmp_path / "file").write_text("x")  # a path under a file cannot be made: one line
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main.main(
            ["catalogue", "--manifest", str(manifest), "--output", str(tmp_path / "file" / "M.tsv")]
        )
    assert stop.value.code == 2 and "is a file" in capsys.readouterr().err


def test_filtered_stderr_drops_only_tensorflow_start_up_noise(capfd):
    """What C++ code writes to file descriptor 2 during TensorFlow's import: the start-up
    notices go, anything else (a real warning, an import error's output) is written back."""
    from keras_spkid.errors import START_UP_NOISE, filtered_stderr

    notice = (
        "I0000 00:00:1796208405.580607   12230 port.cc:153] oneDNN custom operations are "
        "on. You may see slightly different numerical results.\n"
    )
    absl = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    )
    with pytest.raises(RuntimeError, match="import failed"):
        with filtered_stderr(START_UP_NOISE):
            os.write(2, (absl + notice + "W0000 something real\n").encode())
            print("python-level warning", file=sys.stderr)
            raise RuntimeError("import failed")
    err = capfd.readouterr().err
    assert "something real" in err and "python-level warning" in err
    assert "oneDNN" not in err and "absl::InitializeLog" not in err


def test_commands_that_embed_run_without_onednn_and_training_keeps_the_default():
    """oneDNN caches kernels per input shape: commands that embed clips of many lengths
    run TensorFlow's own kernels (faster and 300 MiB smaller there); training keeps
    TensorFlow's default, and an explicit TF_ENABLE_ONEDNN_OPTS wins."""
    probe = (
        "import sys\n"
        "from keras_spkid.errors import run_command\n"
        "def report():\n"
        "    from tensorflow.python.util import _pywrap_util_port\n"
        "    print(_pywrap_util_port.IsMklEnabled())\n"
        "    return 0\n"
        "if sys.argv[1] == 'plain':\n"
        "    report()\n"
        "else:\n"
        "    sys.exit(run_command(report, training=sys.argv[1] == 'training'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}

    def onednn(kind, **extra):
        done = subprocess.run(
            [sys.executable, "-c", probe, kind],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()[-1]

    assert onednn("inference") == "False"
    assert onednn("training") == onednn("plain")  # TensorFlow's choice for this CPU
    assert onednn("inference", TF_ENABLE_ONEDNN_OPTS="1") == "True"
