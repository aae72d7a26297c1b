"""meta-SR's documented commands, run as written on the VoxCeleb-layout fixture tree.

train.py --loss_type prototypical --use_GC True --n_shot 1 --n_query 2 --use_variable True
    --nb_class_train 100                       -> train_protonet.py (same flags + our data flags)
train.py --loss_type softmax ...              -> train_classifier.py --loss softmax
EER_full.py --cp_num 100 --data_type vox2     -> spkid eval verify --model ... --trials ...
identification.py --n_shot 1 --nb_class_test  -> spkid eval fewshot --voxceleb ... --ways --shots
"""

from __future__ import annotations

import json

import pytest

from keras_spkid.cli.main import main as spkid
from keras_spkid.cli.train import protonet_main


@pytest.mark.slow
def test_metasr_train_and_eer_full_on_the_fixture_tree(small_voxceleb_tree, tmp_path, capsys):
    tree = small_voxceleb_tree
    manifest = tree.wav_root / "MANIFEST.tsv"  # paths are relative to its folder
    assert spkid(
        ["catalogue", "--voxceleb", str(tree.root / "voxceleb1" / "test"), "--split-by",
         "speaker", "--fractions", "train=0.5,dev=0.5", "--output", str(manifest)]
    ) == 0  # fmt: skip
    log_dir = tmp_path / "saved_model" / "baseline_000"
    code = protonet_main(
        ["--loss_type", "prototypical", "--use_GC", "True", "--n_shot", "1", "--n_query", "2",
         "--use_variable", "True", "--nb_class_train", "3", "--use_cuda", "True", "--gpu", "0",
         # ours: where the data are, how long, where to write (meta-SR hard-codes them)
         "--train_corpora", str(manifest), "--val_corpora", str(manifest),
         "--num_train_iterations", "2", "--cache", str(tmp_path / "cache"),
         "--log_dir", str(log_dir), "--quiet"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note: --use-cuda, --gpu: accepted for compatibility; no effect here" in out
    config = json.loads((log_dir / "config.json").read_text())
    assert config["loss"] == "proto_cosine" and config["gc_weight"] == 1.0
    assert config["variable_query"] is True
    assert (config["num_way"], config["num_support"], config["num_query"]) == (3, 1, 2)

    out_dir = tmp_path / "eer_full"
    code = spkid(
        ["eval", "verify", "--model", str(log_dir / "best" / "model.keras"),
         "--trials", str(tree.trials), "--root", str(tree.wav_root), "--out", str(out_dir),
         "--quiet"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "EER" in out and (out_dir / "verify.json").is_file()

    # identification.py --n_shot 1 --n_query 5 --nb_class_test 100 --nb_episode 1000
    code = spkid(
        ["eval", "fewshot", "--model", str(log_dir / "best" / "model.keras"),
         "--voxceleb", str(tree.root / "voxceleb1" / "test"), "--ways", "4", "--shots", "1",
         "--queries", "1", "--episodes", "50", "--out", str(tmp_path / "identification"),
         "--quiet"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads((tmp_path / "identification" / "fewshot.json").read_text())["rows"]
    assert [(r["way"], r["shot"], r["episodes"]) for r in rows] == [(4, 1, 50)]
    assert 0.0 <= rows[0]["mean"] <= 1.0 and "| full | 4 | 1 |" in out

    code = protonet_main(["--loss_type", "softmax", "--use_GC", "False", "--n_query", "0"])
    assert code == 2 and "train_classifier.py --loss softmax" in capsys.readouterr().err
