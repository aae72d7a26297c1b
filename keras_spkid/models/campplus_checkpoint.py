"""Import a 3D-Speaker CAM++ PyTorch checkpoint into the Keras :func:`build_campplus`.

:func:`load_campplus_state_dict` maps a state_dict (read without torch by
:mod:`keras_spkid.models.torch_checkpoint`) onto the Keras layers holding weights
(:func:`weighted_layers`: the sublayers of each D-TDNN layer), which carry the PyTorch
module names: ``<module>.weight`` of a ``Conv2d`` ``[out, in, kF, kT]`` becomes
the kernel ``[kT, kF, in, out]`` of the Keras convolution over (time, frequency); a
``Conv1d`` ``[out, in, k]`` becomes ``[k, in, out]`` (a ``Dense`` kernel ``[in, out]``
when ``k = 1``); batch norms take ``weight, bias, running_mean, running_var``. Every
name and shape is checked before any weight is set, and the first mismatch is reported.

:func:`convert_campplus` writes the result as a model on raw 16 kHz audio
(:class:`~keras_spkid.audio.frontend.KaldiFbank` front end inside), ready for every
command's ``--model``.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from keras_spkid.atomic import atomic_path, write_text_atomic
from keras_spkid.audio.frontend import KaldiFbank
from keras_spkid.models.campplus import build_campplus
from keras_spkid.models.registry import with_frontend
from keras_spkid.models.torch_checkpoint import CheckpointError, read_state_dict

_IGNORED_SUFFIXES = (".num_batches_tracked",)
CAMPPLUS_BATCH_SECONDS = 20.0
"""``max_batch_seconds`` written into a converted model's config.json (see
:class:`~keras_spkid.inference.model_io.EmbeddingModel`)."""


def weighted_layers(encoder: keras.Model) -> list[keras.layers.Layer]:
    """The layers holding ``encoder``'s weights, in order, sublayers of composite layers
    (:class:`~keras_spkid.models.campplus.CAMDenseLayer`) in place of their parent."""
    return [
        layer
        for layer in encoder._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not list(layer._flatten_layers(include_self=False))
    ]


def _torch_weights(layer: keras.layers.Layer) -> dict[str, tuple[int, ...]]:
    """PyTorch parameter name -> PyTorch shape for each weight of ``layer``."""
    name = layer.name
    if isinstance(layer, keras.layers.Conv2D):
        kt, kf, cin, cout = layer.kernel.shape
        return {f"{name}.weight": (cout, cin, kf, kt)}
    if isinstance(layer, keras.layers.Conv1D):
        k, cin, cout = layer.kernel.shape
        return {f"{name}.weight": (cout, cin, k)}
    if isinstance(layer, keras.layers.Dense):
        cin, cout = layer.kernel.shape
        names = {f"{name}.weight": (cout, cin, 1)}
        if layer.use_bias:
            names[f"{name}.bias"] = (cout,)
        return names
    if isinstance(layer, keras.layers.BatchNormalization):
        (channels,) = layer.moving_mean.shape
        stats = ("running_mean", "running_var")
        affine = ("weight", "bias") if layer.scale and layer.center else ()
        return {f"{name}.{p}": (channels,) for p in affine + stats}
    if layer.weights:
        raise TypeError(f"no PyTorch mapping for layer {name} ({type(layer).__name__})")
    return {}


def _keras_values(layer: keras.layers.Layer, state: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The values of ``layer.get_weights()`` taken from ``state``."""
    name = layer.name
    if isinstance(layer, keras.layers.Conv2D):
        return [state[f"{name}.weight"].transpose(3, 2, 1, 0)]
    if isinstance(layer, keras.layers.Conv1D):
        return [state[f"{name}.weight"].transpose(2, 1, 0)]
    if isinstance(layer, keras.layers.Dense):
        values = [state[f"{name}.weight"][:, :, 0].T]
        return values + ([state[f"{name}.bias"]] if layer.use_bias else [])
    # BatchNormalization: get_weights() order is gamma, beta, moving_mean, moving_variance
    names = (["weight"] if layer.scale else []) + (["bias"] if layer.center else [])
    return [state[f"{name}.{p}"] for p in names + ["running_mean", "running_var"]]


def load_campplus_state_dict(
    encoder: keras.Model, state: dict[str, np.ndarray], source: str = "checkpoint"
) -> None:
    """Set the weights of a :func:`build_campplus` encoder from a PyTorch state_dict.

    Raises:
        CheckpointError: a name the encoder needs is missing, the checkpoint has a name
            the encoder lacks, or a shape differs; the message names the first one (in
            the encoder's layer order) and no weight has been changed.
    """
    expected: dict[str, tuple[int, ...]] = {}
    layers = weighted_layers(encoder)
    for layer in layers:
        expected.update(_torch_weights(layer))
    hint = "it is not a CAM++ checkpoint of this size (3D-Speaker CAMPPlus, 80 bands, 192-d)"
    for name, shape in expected.items():
        if name not in state:
            raise CheckpointError(f"{source}: {hint}: no {name} {list(shape)}")
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"{source}: {hint}: {name} has shape {list(state[name].shape)}, "
                f"expected {list(shape)}"
            )
    extra = [n for n in state if n not in expected and not n.endswith(_IGNORED_SUFFIXES)]
    if extra:
        raise CheckpointError(
            f"{source}: {hint}: unexpected {extra[0]} {list(state[extra[0]].shape)}"
        )
    for layer in layers:
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in _keras_values(layer, state)])


def campplus_from_checkpoint(path, n_mels: int = 80, embedding_dim: int = 192) -> keras.Model:
    """A CAM++ model on raw 16 kHz audio ``[B, samples] -> [B, D]`` with the weights of ``path``.

    The front end is :class:`KaldiFbank` (80 bands, mean-normalised), as 3D-Speaker's.

    Raises:
        CheckpointError: unreadable, truncated or mismatched checkpoint.
    """
    state = read_state_dict(path)
    encoder = build_campplus(n_mels=n_mels, embedding_dim=embedding_dim)
    load_campplus_state_dict(encoder, state, str(path))
    return with_frontend(encoder, KaldiFbank(n_mels=n_mels), name="campplus_waveform")


def convert_campplus(checkpoint, output) -> list[Path]:
    """Convert a CAM++ ``.pt`` state_dict into ``output/model.keras`` (+ ``config.json``).

    Args:
        checkpoint: a ``torch.save``-d 3D-Speaker ``CAMPPlus`` state_dict.
        output: folder to write (created); existing files of the same names are replaced
            atomically, and nothing is written when the checkpoint does not fit.

    Returns the paths written. Raises :class:`CheckpointError` on a bad checkpoint.
    """
    checkpoint, output = Path(checkpoint), Path(output)
    model = campplus_from_checkpoint(checkpoint)
    output.mkdir(parents=True, exist_ok=True)
    model_path = output / "model.keras"
    with atomic_path(model_path, ".keras") as tmp:
        model.save(tmp)
    config = {
        "architecture": "campplus",
        "source_checkpoint": checkpoint.name,
        "weights_dtype": "float32",
        "frontend": {
            k: v for k, v in model.get_layer("kaldi_fbank").get_config().items() if k != "dtype"
        },
        "input": "raw 16 kHz mono waveform [batch, samples], float32 in [-1, 1]",
        "output": f"embedding [batch, {model.outputs[0].shape[-1]}]; compare by cosine",
        "parameters": int(model.count_params()),
        # audio per model call: one 60 s call took 330 MB more than a 2 s one, so the
        # default 240 s calls would take over 1 GB on top of the model
        "max_batch_seconds": CAMPPLUS_BATCH_SECONDS,
    }
    config_path = output / "config.json"
    write_text_atomic(config_path, json.dumps(config, indent=1, sort_keys=True) + "\n")
    return [model_path, config_path]
