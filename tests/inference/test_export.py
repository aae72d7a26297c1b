"""Exported models give the same embeddings as the trained encoder they come from."""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from keras_spkid.cli.main import main as spkid
from keras_spkid.inference.model_io import load_embedding_model
from keras_spkid.models import build_encoder
from keras_spkid.scoring.calibration import Calibration


def test_export_keras_and_savedmodel_parity(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    encoder = build_encoder("conv6", n_mels=64)
    encoder.save(run / "best" / "model.keras")
    (run / "config.json").write_text(json.dumps({"encoder": "conv6", "n_mels": 64}))
    Calibration(0.6, "eer", 0.1, 0.1, 0.1).save(run / "best" / "calibration.json")
    out = tmp_path / "exported"
    assert spkid(["export", "--model", str(run / "best" / "model.keras"), "--output", str(out),
                  "--format", "keras", "savedmodel"]) == 0

    wave = (0.1 * np.random.default_rng(0).normal(size=(3, 24000))).astype("float32")
    reference = load_embedding_model(run / "best" / "model.keras").model(wave).numpy()
    exported = load_embedding_model(out / "model.keras")
    assert exported.calibration.threshold == 0.6
    np.testing.assert_allclose(exported.model(wave).numpy(), reference, atol=1e-4)
    served = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(served.serve(tf.constant(wave)).numpy(), reference, atol=1e-4)
    config = json.loads((out / "config.json").read_text())
    assert config["training_config"]["encoder"] == "conv6" and config["frontend"]["n_mels"] == 64
