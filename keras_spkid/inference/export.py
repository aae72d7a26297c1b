"""Package a trained encoder for use: a raw-audio ``.keras`` model, a TF SavedModel, LiteRT.

A training run saves its encoder on filterbanks; users and the other commands want a
model that takes raw 16 kHz audio, with the decision threshold and the training config
beside it. :func:`export_model` writes, into one folder:

* ``model.keras``: ``[batch, samples] -> [batch, D]``, front end inside;
* ``calibration.json``: the threshold (when given), picked up by every command, and
  ``cohort.npy`` when its open-set decision is on AS-Norm scores;
* ``config.json``: where it came from (the run's config, the front end);
* ``saved_model/`` (``formats`` with ``"savedmodel"``): the same model exported with
  ``keras.Model.export`` for TF Serving / TFLite converters (signature ``serve`` taking
  ``waveform`` float32 ``[batch, samples]``);
* ``model.tflite`` (``formats`` with ``"tflite"``): the same model for the LiteRT
  (TFLite) interpreter on phones and small boards; see :func:`export_tflite`;
* ``model.onnx`` (``formats`` with ``"onnx"``): the same model for onnxruntime; see
  :mod:`keras_spkid.inference.onnx_export`.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_spkid.atomic import atomic_path, remove, write_text_atomic
from keras_spkid.inference.model_io import MODEL_CONFIG_FILE, ModelError, load_embedding_model
from keras_spkid.scoring.calibration import CALIBRATION_FILE, Calibration

FORMATS = ("keras", "savedmodel", "tflite", "onnx")


def export_tflite(model: keras.Model, target, source="model") -> Path:
    """Convert a raw-audio model to a LiteRT flatbuffer at ``target`` (``*.tflite``).

    The file has one signature, ``serving_default``: input ``waveform`` float32
    ``[batch, samples]`` with both dimensions dynamic (resize the input, or call the
    signature runner, for any clip of at least the model's minimum length), output
    ``output_0`` float32 ``[batch, D]``, the same embedding as ``model``. Weights stay
    float32 (no quantisation), so embeddings match the ``.keras`` model to ~1e-5.

    Conversion goes through Keras' ``format="litert"`` export (a SavedModel, then
    ``tf.lite.TFLiteConverter.from_saved_model``) restricted to the TFLite builtin ops
    (``TFLITE_BUILTINS``): the ``LogMel`` front end's ``tf.signal.stft`` lowers to the
    builtin ``RFFT2D``, the rest to convolutions, pooling and reductions, so no Flex
    (``SELECT_TF_OPS``) delegate is needed; the plain LiteRT runtime lacks it and it adds
    megabytes to an app. A model that needs a TF op outside the builtins (e.g. an
    ``x[:, :, None]`` slice of a dynamic shape, a ``StridedSlice`` with ``new_axis_mask``)
    is rejected rather than exported with Flex ops.

    Raises:
        ModelError: the converter rejects the model; the one-line message names
            ``source`` and the unsupported ops.
    """
    target = Path(target)
    try:
        with atomic_path(target, ".tflite") as tmp:
            model.export(
                str(tmp),
                format="litert",
                verbose=False,
                input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")],
                target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
            )
    except Exception as error:  # noqa: BLE001 - ConverterError is not public; tracing raises others
        # ConverterError.errors names the offending ops; its text is pages of MLIR.
        ops = sorted(
            {
                e.operator.name.removeprefix("tf.")
                for e in getattr(error, "errors", [])
                if e.operator.name
            }
        )
        lines = str(error).strip().splitlines()
        reason = (
            f"ops with no LiteRT builtin: {', '.join(ops)}"
            if ops
            else lines[0][:200]
            if lines
            else type(error).__name__
        )
        raise ModelError(
            f"{source}: cannot convert to LiteRT ({reason}; export the keras or "
            "savedmodel format instead)"
        ) from None
    return target


def export_model(
    model_path,
    out_dir,
    calibration: Calibration | None = None,
    formats=("keras",),
    provenance: dict | None = None,
) -> list[Path]:
    """Export ``model_path`` (a run's encoder or a raw-audio model) into ``out_dir``.

    Args:
        model_path: a ``.keras`` model; the run's ``config.json`` is looked for two
            folders up (``<run>/best/model.keras`` -> ``<run>/config.json``).
        out_dir: folder to write (created).
        calibration: threshold to ship with the model (default: the one beside
            ``model_path``, if any).
        formats: any of :data:`FORMATS`.
        provenance: extra fields for ``config.json`` (e.g. the command that made it).

    Returns the paths written.

    Raises:
        ModelError: ``model_path`` cannot be loaded, or (``"tflite"``, ``"onnx"``) converted.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {FORMATS}")
    loaded = load_embedding_model(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    target = out_dir / "model.keras"
    with atomic_path(target, ".keras") as tmp:
        loaded.model.save(tmp)
    written.append(target)
    calibration = calibration or loaded.calibration
    if calibration is not None:
        calibration.save(out_dir / CALIBRATION_FILE)
        written.append(out_dir / CALIBRATION_FILE)
        if calibration.decision().score == "asnorm" and loaded.cohort is not None:
            from keras_spkid.scoring.decision import COHORT_FILE

            with atomic_path(out_dir / COHORT_FILE, ".npy") as tmp:
                np.save(tmp, loaded.cohort)
            written.append(out_dir / COHORT_FILE)
    run_config = Path(model_path).resolve().parent.parent / "config.json"
    config = {
        "source_model": str(model_path),
        "training_config": json.loads(run_config.read_text()) if run_config.is_file() else None,
        "input": "raw 16 kHz mono waveform [batch, samples], float32 in [-1, 1]",
        "output": f"embedding [batch, {loaded.dim}]; compare L2-normalised embeddings by cosine",
        "frontend": loaded.frontend.get_config(),
        "max_batch_seconds": loaded.max_batch_seconds,
        **(provenance or {}),
    }
    write_text_atomic(out_dir / MODEL_CONFIG_FILE, json.dumps(config, indent=1, sort_keys=True))
    written.append(out_dir / MODEL_CONFIG_FILE)
    if "savedmodel" in formats:
        saved = out_dir / "saved_model"
        with atomic_path(saved) as staging:
            remove(staging)
            loaded.model.export(str(staging), format="tf_saved_model", verbose=False)
            remove(saved)
        written.append(saved)
    if "tflite" in formats:
        written.append(export_tflite(loaded.model, out_dir / "model.tflite", model_path))
    if "onnx" in formats:
        from keras_spkid.inference.onnx_export import export_onnx

        written.append(export_onnx(loaded.model, out_dir / "model.onnx", model_path))
    return written
