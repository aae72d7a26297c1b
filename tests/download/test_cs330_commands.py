"""CS330's documented commands, run as written on a VoxCeleb-layout site (a few steps).

voxcelebdownloader.py --url-directory --audio-directory --output-dir
    -> spkid download youtube (same flags; features instead of PNG spectrograms)
protonet.py --num_way ... --train_url_directory --test_url_directory
    --spectrogram_directory --test_interval --print_interval     -> train_protonet.py
protonet.py --test --log_dir --checkpoint_step                  -> train_protonet.py --test
mae.py --mask --mask_ratio --num_iterations ...                 -> train_mae.py
protonet.py --pretrained_weights MAE --mask --mask_ratio ...    -> --init-from
"""

from __future__ import annotations

import json

import pytest

from keras_spkid.cli.download import main as download
from keras_spkid.cli.train import mae_main, protonet_main
from tests.fixtures.http_server import MediaServer


@pytest.mark.slow
def test_cs330_readme_commands_run_as_documented(media_site, tmp_path, capsys):
    data = tmp_path / "data"
    spectrograms = data / "spectrograms"
    with MediaServer(media_site.media) as server:
        for txt in (media_site.dev_txt, media_site.test_txt):
            code = download(
                ["youtube", "--url-directory", str(txt), "--audio-directory", str(data / "audio"),
                 "--output-dir", str(spectrograms),
                 # test-only: the local server instead of YouTube, short back-off, no bars
                 "--url-template", server.url("{id}"), "--backoff", "0.01", "--quiet"]
            )  # fmt: skip
            assert code == 0, capsys.readouterr().err
    assert len(list(spectrograms.glob("dev/logmel-*/index.json"))) == 1
    assert len(list(spectrograms.glob("test/logmel-*/index.json"))) == 1
    cached = {p.name for p in spectrograms.glob("dev/logmel-*/shard-*.pkl")}
    capsys.readouterr()

    data_flags = [
        "--train_url_directory", str(media_site.dev_txt),
        "--test_url_directory", str(media_site.test_txt),
        "--spectrogram_directory", str(spectrograms),
    ]  # fmt: skip
    log_dir = tmp_path / "logs" / "protonet"
    code = protonet_main(
        ["--num_way", "2", "--num_support", "1", "--num_query", "1", "--learning_rate", "0.001",
         "--batch_size", "2", "--num_train_iterations", "2", *data_flags,
         "--test_interval", "2", "--print_interval", "1", "--log_dir", str(log_dir)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "done: step 2" in out and "\x1b" not in out  # plain progress lines when logged
    config = json.loads((log_dir / "config.json").read_text())
    assert config["cache"] == str(spectrograms)
    assert config["train_corpora"] == [str(data / "audio" / "dev")]
    assert config["val_corpora"] == config["test_corpora"] == [str(data / "audio" / "test")]
    # the download's features were reused, not computed again
    assert {p.name for p in spectrograms.glob("dev/logmel-*/shard-*.pkl")} == cached
    assert (log_dir / "best" / "model.keras").is_file()

    code = protonet_main(
        ["--num_way", "2", "--num_support", "1", "--num_query", "1", *data_flags,
         "--test", "--log_dir", str(log_dir), "--checkpoint_step", "2", "--test_tasks", "20"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "2-way 1-shot" in out and "--checkpoint-step" in out  # the no-effect note

    mae_dir = tmp_path / "logs" / "mae"
    code = mae_main(
        ["--learning_rate", "0.005", "--mask", "strips", "--mask_ratio", "0.75",
         "--batch_size", "4", "--num_iterations", "2", *data_flags,
         "--print_interval", "1", "--test_interval", "2", "--log_dir", str(mae_dir)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "done: step 2" in out

    code = protonet_main(
        ["--pretrained_weights", str(mae_dir / "best" / "model.keras"), "--mask", "strips",
         "--mask_ratio", "0.75", "--num_way", "2", "--num_support", "1", "--num_query", "1",
         "--batch_size", "2", "--num_train_iterations", "1", *data_flags,
         "--log_dir", str(tmp_path / "logs" / "proto_mae")]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "done: step 1" in out


def test_cs330_data_flags_fail_before_work_naming_the_flag(media_site, tmp_path, capsys):
    missing = tmp_path / "spectrograms"
    code = protonet_main(
        ["--train_url_directory", str(media_site.dev_txt),
         "--test_url_directory", str(media_site.test_txt),
         "--spectrogram_directory", str(missing), "--log_dir", str(tmp_path / "run")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--spectrogram_directory" in err and "spkid download youtube --url-directory" in err
    code = protonet_main(["--train_url_directory", str(tmp_path), "--spectrogram_directory", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "--test_url_directory" in err
    assert not (tmp_path / "run").exists()
