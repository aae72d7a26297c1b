"""Load an embedding model for inference: a ``.keras`` file, a preset name, or the default.

Training runs save the encoder on filterbanks (``[B, frames, n_mels] -> [B, D]``);
the shipped default model takes raw audio (``[B, samples] -> [B, D]``, front end
inside). :func:`load_embedding_model` accepts both and always returns a model on raw
16 kHz audio, so every command treats them alike. A ``calibration.json`` next to the
model file (see :mod:`keras_spkid.scoring.calibration`) comes with it. A built-in
baseline's name (``mfcc_stats``, see :mod:`keras_spkid.baselines`) stands for its file.

Presets are the models shipped in ``keras_spkid/pretrained/<name>/`` (:data:`PRESETS`);
their names are accepted wherever a command takes ``--model``, and are resolved here
only (:func:`resolve_model_path`). :data:`DEFAULT_PRESET` is used when ``--model`` is
left out.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import zipfile
from pathlib import Path

import keras

from keras_spkid.audio.frontend import LogMel
from keras_spkid.errors import SpkidError
from keras_spkid.scoring.calibration import CALIBRATION_FILE, Calibration

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
PRESETS: dict[str, Path] = {
    "campplus_zh_en": PRETRAINED_DIR / "campplus_zh_en" / "model.keras",
    "conv6": PRETRAINED_DIR / "conv6" / "model.keras",
}
"""Shipped models by name: CAM++ (3D-Speaker, zh+en, 192-d, Apache-2.0; see its
LICENSE/NOTICE) and our conv6 prototypical network (64-d)."""

DEFAULT_PRESET = "campplus_zh_en"
DEFAULT_MODEL = PRESETS[DEFAULT_PRESET]
"""The built-in default model (raw 16 kHz audio in, L2-normalisable embedding out)."""


DEFAULT_BATCH_SECONDS = 240.0
"""Audio per model call unless the model's ``config.json`` says less."""
MODEL_CONFIG_FILE = "config.json"
"""Written next to an exported or converted model: where it came from, its front end,
and (optional) ``max_batch_seconds``."""


class ModelError(SpkidError):
    """A model file cannot be used for embedding extraction."""


@dataclasses.dataclass
class EmbeddingModel:
    """A raw-audio embedding model and what callers need to know about it.

    Attributes:
        model: ``keras.Model`` ``[B, samples] -> [B, D]`` on 16 kHz audio.
        path: the ``.keras`` file it came from.
        frontend: the log-mel layer inside it (window, hop, sample rate).
        calibration: the threshold stored next to the model, if any.
        max_batch_seconds: audio per model call when embedding (bounds memory; longer
            clips are embedded in windows no longer than this). A model's ``config.json``
            may lower it (``"max_batch_seconds"``) when its activations are large.
    """

    model: keras.Model
    path: Path
    frontend: LogMel
    calibration: Calibration | None = None
    max_batch_seconds: float = DEFAULT_BATCH_SECONDS

    @property
    def dim(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @functools.cached_property
    def sha256(self) -> str:
        """SHA-256 (hex) of the model file: what embeddings made earlier are checked against."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @functools.cached_property
    def cohort(self):
        """The AS-Norm cohort ``[C, d]`` shipped next to the model (``cohort.npy``), or
        ``None``; open-set decisions on AS-Norm scores need it."""
        from keras_spkid.scoring.decision import load_cohort

        return load_cohort(self.path.parent)

    @property
    def min_samples(self) -> int:
        """Shortest waveform the front end can analyse: one analysis window."""
        return int(self.frontend.win_length)


def _find_frontend(model: keras.Model) -> LogMel | None:
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, LogMel):
            return layer
    return None


def _register_custom_objects() -> None:
    """Import the modules whose layers a saved model may contain (registers them)."""
    import keras_spkid.baselines
    import keras_spkid.layers.pooling
    import keras_spkid.losses
    import keras_spkid.models  # noqa: F401


def resolve_model_path(model=None) -> Path:
    """The ``.keras`` file that ``--model`` names: a file, a preset, a baseline, or the default.

    An existing file wins over a name. ``None`` is :data:`DEFAULT_MODEL`; a preset name
    (:data:`PRESETS`) is its shipped file; a baseline name (``"mfcc_stats"``) is built
    and saved on first use.

    Raises:
        ModelError: a bare name (no folder, no ``.keras``) that is neither a file nor a
            known name; the message lists the names.
    """
    if model is None:
        return DEFAULT_MODEL
    path = Path(model)
    if path.exists():
        return path
    from keras_spkid.baselines import BASELINES, baseline_model_path

    if str(model) in PRESETS:
        return PRESETS[str(model)]
    if str(model) in BASELINES:
        return baseline_model_path(str(model))
    if path.suffix != ".keras" and len(path.parts) == 1:
        raise ModelError(
            f"{model}: no such model file, preset or baseline (presets: "
            f"{', '.join(sorted(PRESETS))}; baselines: {', '.join(sorted(BASELINES))}; "
            "or give a .keras file)"
        )
    return path


def load_embedding_model(path=None) -> EmbeddingModel:
    """Load ``path`` (default: the built-in model) as a raw-audio embedding model.

    ``path`` may also be a preset name (``"campplus_zh_en"``, ``"conv6"``) or a built-in
    baseline (``"mfcc_stats"``) when no such file exists (:func:`resolve_model_path`).

    An encoder on filterbanks ``[B, T, n_mels]`` is wrapped with ``LogMel(n_mels)``
    (the front end every training command uses).

    Raises:
        ModelError: the file is missing, is not a Keras ``.keras`` archive, or its
            model does not map audio or filterbanks to one embedding per clip.
    """
    path = resolve_model_path(path)
    hint = (
        "give the best/model.keras of a training run or a preset "
        f"({', '.join(sorted(PRESETS))}), or leave --model out for the default"
    )
    if not path.is_file():
        if path in PRESETS.values():
            raise ModelError(
                f"{path}: the built-in model is missing from this "
                "installation (reinstall keras-spkid, or give --model)"
            )
        raise ModelError(f"{path}: model file not found ({hint})")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a Keras model (expected a .keras archive; {hint})")
    _register_custom_objects()
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: cannot load the Keras model ({first}; {hint})") from None
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelError(
            f"{path}: model gives {[tuple(o.shape) for o in model.outputs]}, "
            f"not one embedding [batch, dim] per clip ({hint})"
        )
    if len(shape) == 3:  # an encoder on filterbanks: put the training front end in front
        from keras_spkid.models import with_frontend

        model = with_frontend(model, LogMel(n_mels=int(shape[-1])))
    elif len(shape) != 2:
        raise ModelError(
            f"{path}: model input {shape} is neither audio [batch, samples] "
            f"nor filterbanks [batch, frames, n_mels] ({hint})"
        )
    frontend = _find_frontend(model)
    if frontend is None:
        raise ModelError(f"{path}: model takes audio but has no LogMel front end ({hint})")
    calibration_path = path.with_name(CALIBRATION_FILE)
    calibration = Calibration.load(calibration_path) if calibration_path.is_file() else None
    return EmbeddingModel(model, path, frontend, calibration, _batch_seconds(path))


def _batch_seconds(path: Path) -> float:
    """``max_batch_seconds`` from the ``config.json`` next to ``path`` (default
    :data:`DEFAULT_BATCH_SECONDS`)."""
    config_path = path.with_name(MODEL_CONFIG_FILE)
    try:
        value = json.loads(config_path.read_text()).get("max_batch_seconds")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_BATCH_SECONDS
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1.0 <= value:
        return float(value)
    return DEFAULT_BATCH_SECONDS
