"""Read a PyTorch ``.pt`` state_dict into NumPy arrays without importing torch.

``torch.save`` (since PyTorch 1.6) writes a zip archive: ``<prefix>/data.pkl`` is a
pickle of the state_dict whose tensors are persistent references to raw storages kept
as ``<prefix>/data/<key>`` entries (little-endian, the storage's dtype). Each tensor is
rebuilt by ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``.
:func:`read_state_dict` runs that pickle with an unpickler that knows only these few
globals (storages, the tensor rebuilders, ``OrderedDict``) and refuses anything else,
so reading a checkpoint never executes code from it.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from keras_spkid.errors import SpkidError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # no NumPy dtype; converted from uint16 bits below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(SpkidError):
    """A checkpoint file cannot be read, or does not fit the model."""


class _StorageType:
    """Stands for ``torch.<Name>Storage`` inside the pickle."""

    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, meta=None):
    """An ndarray view of ``storage`` (a flat array) with ``size`` and element ``stride``."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(size) > 0 and needed > storage.size:
        raise CheckpointError(f"a tensor needs {needed} elements of a storage of {storage.size}")
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * itemsize for s in stride)
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(handle)
        self._archive, self._prefix, self._source = archive, prefix, source
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"{self._source}: the checkpoint pickle refers to {module}.{name}; only plain "
            "state_dicts of tensors can be read (save model.state_dict(), not the model)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self._source}: unknown persistent reference {pid!r:.60}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self._storages:
            name = f"{self._prefix}data/{key}"
            try:
                raw = self._archive.read(name)
            except KeyError:
                raise CheckpointError(f"{self._source}: storage {name} is missing") from None
            if storage_type.name == "BFloat16Storage":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(_STORAGE_DTYPES[storage_type.name]))
                array = array.astype(array.dtype.newbyteorder("="), copy=False)
            if array.size < numel:
                raise CheckpointError(
                    f"{self._source}: storage {name} holds {array.size} of {numel} elements"
                )
            self._storages[key] = array
        return self._storages[key]


def read_state_dict(path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``-d state_dict, by name, as NumPy arrays.

    Accepts a plain state_dict or a dict holding one under ``"state_dict"`` or
    ``"model"``; non-tensor entries are dropped.

    Raises:
        CheckpointError: the file is missing, truncated, not a PyTorch zip checkpoint,
            or its pickle refers to anything but tensors and storages.
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"{source}: checkpoint not found")
    if not zipfile.is_zipfile(source):
        raise CheckpointError(
            f"{source}: not a PyTorch zip checkpoint (truncated, or saved with "
            "_use_new_zipfile_serialization=False; re-save it with a current torch.save)"
        )
    try:
        with zipfile.ZipFile(source) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{source}: expected one data.pkl in the archive")
            prefix = pickles[0][: -len("data.pkl")]
            with archive.open(pickles[0]) as handle:
                state = _Unpickler(handle, archive, prefix, source).load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError, ValueError) as error:
        raise CheckpointError(f"{source}: unreadable checkpoint ({error})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: the checkpoint holds no state_dict")
    return {str(k): v for k, v in state.items() if isinstance(v, np.ndarray)}
