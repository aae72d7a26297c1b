"""Exported models give the same embeddings as the trained encoder they come from."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_spkid.audio.frontend import KaldiFbank, LogMel
from keras_spkid.audio.io import load_audio
from keras_spkid.cli.main import main as spkid
from keras_spkid.data.corpora import data_root
from keras_spkid.inference.export import export_tflite
from keras_spkid.inference.model_io import (
    ModelError,
    load_embedding_model,
)
from keras_spkid.models import build_encoder
from keras_spkid.scoring.calibration import Calibration
from keras_spkid.scoring.decision import OpenSetDecision

# TF 2.21's tf.lite.Interpreter warns that it moved to the ai_edge_litert package; it
# runs the same LiteRT kernels, and avoids a dependency for the tests.
LITERT_DEPRECATION = "ignore:.*tf.lite.Interpreter is deprecated:UserWarning"


def test_export_keras_and_savedmodel_parity(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    encoder = build_encoder("conv6", n_mels=64)
    encoder.save(run / "best" / "model.keras")
    (run / "config.json").write_text(json.dumps({"encoder": "conv6", "n_mels": 64}))
    open_set = OpenSetDecision.fixed(2.0, score="asnorm").to_dict()
    Calibration(0.6, "eer", 0.1, 0.1, 0.1, open_set=open_set).save(
        run / "best" / "calibration.json"
    )
    cohort = np.random.default_rng(1).normal(size=(10, 64)).astype("float32")
    np.save(run / "best" / "cohort.npy", cohort)
    out = tmp_path / "exported"
    assert (
        spkid(
            [
                "export",
                "--model",
                str(run / "best" / "model.keras"),
                "--output",
                str(out),
                "--format",
                "keras",
                "savedmodel",
            ]
        )
        == 0
    )

    wave = (0.1 * np.random.default_rng(0).normal(size=(3, 24000))).astype("float32")
    reference = load_embedding_model(run / "best" / "model.keras").model(wave).numpy()
    exported = load_embedding_model(out / "model.keras")
    assert exported.calibration.threshold == 0.6
    assert exported.calibration.decision().score == "asnorm"  # and its cohort travels with it
    np.testing.assert_array_equal(exported.cohort, cohort)
    np.testing.assert_allclose(exported.model(wave).numpy(), reference, atol=1e-4)
    served = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(served.serve(tf.constant(wave)).numpy(), reference, atol=1e-4)
    config = json.loads((out / "config.json").read_text())
    assert config["training_config"]["encoder"] == "conv6" and config["frontend"]["n_mels"] == 64
    assert config["max_batch_seconds"] == exported.max_batch_seconds == 240.0


@pytest.fixture(scope="module")
def speech():
    """5 s of 16 kHz float32 audio: a LibriSpeech clip of the shared data, or without it a
    chirp in noise (parity needs a non-silent signal, not a voice)."""
    path = data_root() / "librispeech_1utt" / "103" / "103-1240-0000.flac"
    if path.is_file():
        return load_audio(path)[:80000]
    t = np.arange(80000) / 16000
    chirp = 0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t)
    return (chirp + 0.05 * np.random.default_rng(0).normal(size=t.size)).astype("float32")


@pytest.mark.filterwarnings(LITERT_DEPRECATION)
def test_export_tflite_parity_at_two_lengths(tmp_path, speech):
    out = tmp_path / "exported"
    assert (
        spkid(
            [
                "export",
                "--model",
                "conv6",
                "--output",
                str(out),
                "--format",
                "keras",
                "tflite",
            ]
        )
        == 0
    )
    reference = load_embedding_model(out / "model.keras")
    interpreter = tf.lite.Interpreter(model_path=str(out / "model.tflite"))
    assert interpreter.get_input_details()[0]["shape_signature"].tolist() == [-1, -1]
    embed = interpreter.get_signature_runner("serving_default")
    for seconds in (1.0, 3.7):  # the runner resizes the input to each length
        wave = speech[None, : round(seconds * 16000)]
        embedding = embed(waveform=wave)["output_0"]
        assert embedding.shape == (1, reference.dim)
        np.testing.assert_allclose(embedding, reference.model(wave).numpy(), rtol=0, atol=1e-4)


def test_export_tflite_rejects_ops_outside_the_builtins(tmp_path):
    waveform = keras.Input((None,), name="waveform")
    pooled = keras.layers.GlobalAveragePooling1D()(LogMel(n_mels=16)(waveform))
    model = keras.Model(waveform, keras.layers.Lambda(tf.math.digamma)(pooled))
    with pytest.raises(
        ModelError,
        match=r"^odd\.keras: cannot convert to LiteRT \(ops with "
        r"no LiteRT builtin: Digamma;",
    ) as caught:
        export_tflite(model, tmp_path / "model.tflite", "odd.keras")
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_export_onnx_parity_with_onnxruntime(tmp_path, speech, caplog):
    """spkid export --format onnx: onnxruntime gives the .keras embeddings (batch, lengths)."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements)")
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (requirements.txt)")
    out = tmp_path / "exported"
    caplog.set_level(logging.INFO)
    code = spkid(["export", "--model", "conv6", "--output", str(out), "--format", "onnx"])
    assert code == 0
    noise = [r.getMessage() for r in caplog.records if r.name.startswith(("tf2onnx", "tensorf"))]
    assert not noise, noise  # the converter's INFO lines only with --verbose
    reference = load_embedding_model(out / "model.keras")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["waveform"]
    for seconds in (1.0, 3.7):
        wave = speech[None, : round(seconds * 16000)]
        embedding = session.run(None, {"waveform": wave})[0]
        assert embedding.shape == (1, reference.dim)
        np.testing.assert_allclose(embedding, reference.model(wave).numpy(), rtol=0, atol=1e-4)
    batch = np.stack([speech[:32000], speech[16000:48000]])
    np.testing.assert_allclose(
        session.run(None, {"waveform": batch})[0], reference.model(batch).numpy(), atol=1e-4
    )


def test_matmul_logmel_matches_logmel_on_speech(speech):
    from keras_spkid.inference.onnx_export import MatmulLogMel

    for config in ({}, {"window": "hamming", "normalize": "mean_var", "n_mels": 40}):
        layer = LogMel(**config)
        matmul = MatmulLogMel.from_config(layer.get_config())
        wave = speech[None, :40000]
        np.testing.assert_allclose(matmul(wave).numpy(), layer(wave).numpy(), atol=2e-3)


def test_kaldi_fbank_front_end_exports_to_onnx(tmp_path, speech):
    """CAM++'s front end (KaldiFbank) goes to ONNX as matrix products and matches onnxruntime.

    The whole CAM++ preset converts too (largest difference 6.4e-6 on real speech of 1 to
    12 s), but tf2onnx takes many minutes over its 52 D-TDNN layers, so the test converts
    the front end under a pooling head: that is the part the export rewrites.
    """
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements)")
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (requirements.txt)")
    from keras_spkid.inference.onnx_export import MatmulKaldiFbank, export_onnx

    fbank = KaldiFbank(n_mels=80)
    wave = speech[None, :37000]
    twin = MatmulKaldiFbank.from_config(fbank.get_config())
    np.testing.assert_allclose(twin(wave).numpy(), fbank(wave).numpy(), atol=2e-3)
    inputs = keras.Input((None,), name="waveform")
    pooled = keras.layers.GlobalAveragePooling1D()(KaldiFbank(n_mels=80)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(16)(pooled))
    target = export_onnx(model, tmp_path / "fbank.onnx")
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for seconds in (0.5, 2.3):
        x = speech[None, : round(seconds * 16000)]
        np.testing.assert_allclose(
            session.run(None, {"waveform": x})[0], model(x).numpy(), rtol=0, atol=1e-4
        )
