"""ONNX export of a raw-audio model (``spkid export --format onnx``), for onnxruntime.

The converter is tf2onnx (the maintained TensorFlow -> ONNX route; it works with
TensorFlow 2.21 / Keras 3.15). It cannot convert ``tf.signal.stft`` as the
:class:`~keras_spkid.audio.frontend.LogMel` layer uses it: tf2onnx maps an ``RFFT`` only
when its sole consumer is ``ComplexAbs``, and then only with a static shape, while
``LogMel`` takes the real and imaginary parts of a spectrum of any length. So for
export each ``LogMel`` is replaced by :class:`MatmulLogMel`, which computes the same
short-time power spectrum as two matrix products with windowed cosine and sine bases
(a DFT restricted to the ``n_fft // 2 + 1`` bins the mel filters use), and each
``KaldiFbank`` (CAM++) by :class:`MatmulKaldiFbank`, the same for its real FFT: every op
then has an ONNX equivalent (``MatMul``, ``Gather`` for the frames, ``Log``, ``ReduceMean``).
Embeddings match the ``.keras`` model within 1e-4 (tested on real speech), and the
graph keeps a dynamic ``[batch, samples]`` input.

The ONNX file has one input ``waveform`` float32 ``[batch, samples]`` (16 kHz mono in
[-1, 1]) and one output, the embedding ``[batch, D]``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_spkid.atomic import atomic_path
from keras_spkid.audio.frontend import KaldiFbank, LogMel
from keras_spkid.inference.model_io import ModelError

OPSET = 17


class MatmulLogMel(LogMel):
    """:class:`LogMel` with the STFT as matrix products (same output; ONNX-convertible).

    Shapes: waveform ``[batch, samples]`` -> features ``[batch, frames, n_mels]``.
    """

    def _bases(self):
        """Windowed DFT bases ``[win_length, n_fft // 2 + 1]`` (cosine, sine).

        ``tf.signal.stft`` zero-pads each ``win_length`` frame to ``n_fft`` and uses a
        periodic window; so does this.
        """
        n = np.arange(self.win_length)
        a0 = 0.5 if self.window == "hann" else 0.54  # periodic Hann / Hamming
        window = a0 - (1.0 - a0) * np.cos(2.0 * np.pi * n / self.win_length)
        angle = 2.0 * np.pi * np.outer(n, np.arange(self.n_fft // 2 + 1)) / self.n_fft
        cos = (window[:, None] * np.cos(angle)).astype(np.float32)
        sin = (window[:, None] * np.sin(angle)).astype(np.float32)
        return tf.constant(cos), tf.constant(sin)

    def call(self, waveform):
        frames = tf.signal.frame(self.padded(waveform), self.win_length, self.hop_length)
        cos, sin = self._bases()
        real = tf.tensordot(frames, cos, axes=1)
        imag = tf.tensordot(frames, sin, axes=1)
        return self.log_mel(real * real + imag * imag)


class MatmulKaldiFbank(KaldiFbank):
    """:class:`KaldiFbank` with the real FFT as matrix products (same output; ONNX-convertible).

    Shapes: waveform ``[batch, samples]`` -> features ``[batch, frames, n_mels]``.
    """

    def power_spectrum(self, frames):
        """``[B, T, win_length]`` -> ``[B, T, n_fft // 2 + 1]``: DFT of the zero-padded frames."""
        n = np.arange(self.win_length)
        angle = 2.0 * np.pi * np.outer(n, np.arange(self.n_fft // 2 + 1)) / self.n_fft
        real = tf.tensordot(frames, tf.constant(np.cos(angle).astype(np.float32)), axes=1)
        imag = tf.tensordot(frames, tf.constant(np.sin(angle).astype(np.float32)), axes=1)
        return real * real + imag * imag


def onnx_ready(model: keras.Model) -> keras.Model:
    """``model`` with every ``LogMel`` / ``KaldiFbank`` layer replaced by its matrix-product
    twin (:class:`MatmulLogMel`, :class:`MatmulKaldiFbank`; weights shared)."""
    twins = {LogMel: MatmulLogMel, KaldiFbank: MatmulKaldiFbank}

    def swap(layer):
        if type(layer) in twins:
            return twins[type(layer)].from_config(layer.get_config())
        return layer

    try:
        return keras.models.clone_model(model, clone_function=swap)
    except Exception as error:  # noqa: BLE001 - subclassed models cannot be cloned
        raise ModelError(f"cannot prepare the model for ONNX ({error})") from None


def export_onnx(model: keras.Model, target, source="model") -> Path:
    """Convert a raw-audio model to ONNX at ``target`` (``*.onnx``) with tf2onnx.

    Raises:
        ModelError: tf2onnx is not installed, or it cannot convert the model.
    """
    try:
        import tf2onnx
    except ImportError:
        raise ModelError(
            "ONNX export needs tf2onnx and onnx: pip install -r requirements.txt "
            "(or pip install 'keras-spkid[onnx]')"
        ) from None
    ready = onnx_ready(model)
    spec = (tf.TensorSpec([None, None], tf.float32, name="waveform"),)
    function = tf.function(lambda waveform: ready(waveform), input_signature=spec)
    target = Path(target)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    except Exception as error:  # noqa: BLE001 - tf2onnx raises plain ValueErrors and others
        lines = str(error).strip().splitlines()
        reason = lines[0][:200] if lines else type(error).__name__
        raise ModelError(f"{source}: cannot convert to ONNX ({reason})") from None
    with atomic_path(target, ".onnx") as tmp:
        Path(tmp).write_bytes(proto.SerializeToString())
    return target
