"""voxceleb_trainer's training command, as README's table maps it, on the VoxCeleb-layout
fixture tree (a few steps).

trainSpeakerNet.py --model ResNetSE34L --trainfunc angleproto --batch_size 400 --nPerSpeaker 2
    -> train_classifier.py --encoder resnet34 --loss angleproto --speakers-per-batch 400
       --clips-per-speaker 2 --train-corpora data/voxceleb2/dev --train-split ''
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from keras_spkid.cli.train import classifier_main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _readme_command() -> list[str]:
    """The 'ours' cell of README's trainSpeakerNet.py training row, as argv."""
    row = next(
        line
        for line in README.splitlines()
        if line.startswith("| `python trainSpeakerNet.py --model")
    )
    ours = re.findall(r"`([^`]+)`", row)[1]
    return shlex.split(ours)[2:]


@pytest.mark.slow
def test_trainspeakernet_row_runs_on_a_voxceleb_folder(small_voxceleb_tree, tmp_path, capsys):
    tree = small_voxceleb_tree
    folder = str(tree.root / "voxceleb1" / "test")
    argv = _readme_command()
    assert argv[argv.index("--train-corpora") + 1] == "data/voxceleb2/dev"
    argv[argv.index("--train-corpora") + 1] = folder  # the fixture instead of VoxCeleb2
    argv[argv.index("--speakers-per-batch") + 1] = "4"  # 8 speakers here, not 5,994
    log_dir = tmp_path / "run"
    code = classifier_main(
        [*argv, "--num-train-iterations", "2", "--print-interval", "1", "--frames", "100",
         # validation: unseen speakers in voxceleb_trainer; here the same small tree
         "--val-corpora", folder, "--val-split", "", "--val-way", "3", "--val-shot", "1",
         "--val-tasks", "5", "--cache", str(tmp_path / "cache"), "--log-dir", str(log_dir)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "step 2/2" in out and "\x1b" not in out
    config = json.loads((log_dir / "config.json").read_text())
    assert (config["encoder"], config["loss"]) == ("resnet34", "angleproto")
    assert (config["speakers_per_batch"], config["clips_per_speaker"]) == (4, 2)
    assert config["train_corpora"] == [folder] and config["train_split"] == ""
    assert (log_dir / "best" / "model.keras").is_file()
