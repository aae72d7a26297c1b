"""Loading models for inference: the default model, training encoders, bad files."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from keras_spkid.audio.frontend import KaldiFbank, LogMel
from keras_spkid.inference.model_io import (
    DEFAULT_MODEL,
    ModelError,
    load_embedding_model,
)
from keras_spkid.models import build_encoder, with_frontend


def test_default_model_takes_raw_audio_and_ships_a_calibration(preset):
    model = preset(None)
    assert model.path == DEFAULT_MODEL
    assert model.dim > 0 and model.min_samples == model.frontend.win_length
    assert model.calibration is not None and -1 < model.calibration.threshold < 1
    out = model.model(np.random.default_rng(0).normal(size=(2, 16000)).astype("float32") * 0.1)
    assert out.shape == (2, model.dim)


def test_a_training_encoder_is_wrapped_with_the_training_front_end(tmp_path):
    encoder = build_encoder("conv6", n_mels=64)
    encoder.save(tmp_path / "model.keras")
    loaded = load_embedding_model(tmp_path / "model.keras")
    assert loaded.calibration is None and loaded.model.input_shape == (None, None)
    wave = np.random.default_rng(1).normal(size=(1, 12000)).astype("float32") * 0.1
    expected = with_frontend(encoder, LogMel(n_mels=64))(wave)
    np.testing.assert_allclose(loaded.model(wave), expected, atol=1e-5)


def test_bad_model_files_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        load_embedding_model(tmp_path / "nope.keras")
    (tmp_path / "notes.keras").write_text("this is not a model")
    with pytest.raises(ModelError, match="notes.keras: not a Keras model"):
        load_embedding_model(tmp_path / "notes.keras")
    import zipfile

    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(ModelError, match="empty.keras: cannot load the Keras model") as info:
        load_embedding_model(tmp_path / "empty.keras")
    assert "\n" not in str(info.value)


def test_preset_names_are_resolved_in_one_place(tmp_path, monkeypatch):
    from keras_spkid.inference.model_io import PRESETS, resolve_model_path

    assert {"campplus_zh_en", "conv6"} <= set(PRESETS) and DEFAULT_MODEL in PRESETS.values()
    for name, path in PRESETS.items():
        assert resolve_model_path(name) == path and path.is_file(), name
        assert (path.parent / "calibration.json").is_file(), name
    assert (PRESETS["campplus_zh_en"].parent / "LICENSE").is_file()
    assert resolve_model_path(None) == DEFAULT_MODEL
    monkeypatch.chdir(tmp_path)  # a file of the same name wins over the preset
    (tmp_path / "conv6").write_text("not a model")
    assert resolve_model_path("conv6") == Path("conv6")


def test_an_unknown_preset_name_is_a_one_line_error():
    with pytest.raises(ModelError) as info:
        load_embedding_model("campplus_en_zh")
    message = str(info.value)
    assert message.startswith("campplus_en_zh: no such model file, preset or baseline")
    assert "campplus_zh_en, conv6" in message and "mfcc_stats" in message and "\n" not in message


def test_the_conv6_preset_loads_by_name():
    model = load_embedding_model("conv6")
    assert model.dim == 64 and model.calibration is not None


@pytest.mark.parametrize("name", ["conv6", "campplus_zh_en"])
def test_every_preset_ships_an_open_set_decision_with_its_cohort(name, preset):
    """ "unknown" is decided by a decision calibrated on open-set galleries (not the pair
    threshold), with the AS-Norm cohort it needs in the model's embedding space."""
    from keras_spkid.inference.model_io import PRESETS

    assert name in PRESETS
    model = preset(name)
    assert model.calibration is not None and model.calibration.open_set is not None
    decision = model.calibration.decision()
    assert "not calibrated" not in decision.source
    if decision.score == "asnorm":
        assert model.cohort is not None and model.cohort.shape[1] == model.dim
        assert len(model.cohort) >= 100


@pytest.mark.parametrize(
    "frontend_cls, changes",
    [
        (
            LogMel,
            dict(
                n_fft=1024,
                win_length=512,
                hop_length=200,
                fmin=100.0,
                fmax=5000.0,
                window="hamming",
                mel_scale="htk",
                mel_norm=None,
                log_offset=1e-3,
                normalize="mean_var",
                center=False,
                pad_mode="reflect",
            ),
        ),
        (
            KaldiFbank,
            dict(
                n_fft=1024,
                win_length=512,
                hop_length=200,
                fmin=100.0,
                fmax=-400.0,
                preemphasis=0.5,
                remove_dc_offset=False,
                normalize="mean_var",
            ),
        ),
    ],
)
def test_a_saved_front_end_does_not_follow_todays_defaults(
    tmp_path, monkeypatch, frontend_cls, changes
):
    encoder = build_encoder("conv6", n_mels=64)
    model = with_frontend(encoder, frontend_cls(n_mels=64))  # every other setting a default
    wave = np.random.default_rng(2).normal(size=(1, 16000)).astype("float32") * 0.1
    expected = model(wave).numpy()
    saved = model.get_layer(index=1).get_config()
    model.save(tmp_path / "model.keras")

    # Change every default of the class, as a later release might.
    init = frontend_cls.__init__
    names = [
        p.name for p in inspect.signature(init).parameters.values() if p.default is not p.empty
    ]
    assert set(changes) == set(names) - {"sample_rate", "n_mels"}
    defaults = tuple(
        changes.get(n, p.default)
        for n, p in inspect.signature(init).parameters.items()
        if n in names
    )
    monkeypatch.setattr(init, "__defaults__", defaults)
    assert frontend_cls(n_mels=64).get_config() != saved  # the defaults did change
    assert not np.allclose(with_frontend(encoder, frontend_cls(n_mels=64))(wave), expected)

    loaded = load_embedding_model(tmp_path / "model.keras")
    assert type(loaded.frontend) is frontend_cls
    assert loaded.frontend.get_config() == saved
    np.testing.assert_allclose(loaded.model(wave), expected, atol=1e-5)
