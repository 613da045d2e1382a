"""How the network weights of a field are stored in a ``.shac`` file.

Three storage kinds:

- ``"f32"``: float32 (the tiny latent decoder);
- ``"f16"``: float16 (biases);
- ``"q8"``: a matrix ``[R, C]`` as int8 values with one float16 scale per row
  (``w ~ q * scale``, ``|q| <= 127``), stored as two tensors ``NAME`` and ``NAME.scale``.
  This halves the bytes of the MLP heads; on Kodak it cost < 0.01 dB.

The trainer rounds the in-memory weights with :func:`rounded` before measuring
quality, and the decoder rebuilds exactly those values with :func:`decode_tensor`.

>>> import numpy as np
>>> w = np.array([[0.5, -0.25], [0.0, 0.0]], dtype=np.float32)
>>> parts = encode_tensor("w", w, "q8")
>>> sorted(parts), parts["w"].dtype.name, parts["w.scale"].dtype.name
(['w', 'w.scale'], 'int8', 'float16')
>>> bool(np.array_equal(decode_tensor("w", parts, "q8"), rounded(w, "q8")))
True
"""
from __future__ import annotations

from typing import Literal

import numpy as np

Storage = Literal["f32", "f16", "q8"]
_Q8_MAX = 127


def file_names(name: str, kind: Storage) -> list[str]:
    """Names of the tensors that hold weight ``name`` in the file."""
    return [name, f"{name}.scale"] if kind == "q8" else [name]


def stored_bytes(shape: tuple[int, ...], kind: Storage) -> int:
    """Payload bytes of one weight of ``shape`` (tensor headers not included)."""
    count = int(np.prod(shape))
    if kind == "q8":
        return count + 2 * shape[0]
    return count * (4 if kind == "f32" else 2)


def encode_tensor(name: str, array: np.ndarray, kind: Storage) -> dict[str, np.ndarray]:
    """File tensors of weight ``name``.

    Args:
        array: float weights; ``[R, C]`` for ``"q8"``.
    """
    array = np.asarray(array, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"weight {name!r} is not finite")
    if kind == "f32":
        return {name: array}
    if kind == "f16":
        return {name: array.astype(np.float16)}
    if array.ndim != 2:
        raise ValueError(f"weight {name!r}: q8 storage needs a matrix, got shape {array.shape}")
    scale = (np.abs(array).max(axis=1) / _Q8_MAX).astype(np.float16)
    scale[scale == 0] = 1.0
    if not np.all(np.isfinite(scale)):
        raise ValueError(f"weight {name!r}: values too large for a float16 row scale")
    values = np.clip(np.round(array / scale.astype(np.float32)[:, None]), -_Q8_MAX, _Q8_MAX)
    return {name: values.astype(np.int8), f"{name}.scale": scale}


_FLOATS = (np.dtype(np.float16), np.dtype(np.float32))


def names_in_file(name: str, tensors: dict[str, np.ndarray], kind: Storage) -> list[str]:
    """Names of the tensors that hold weight ``name`` in a file with ``tensors``.

    Files written before int8 heads (format version 1 up to commit e4badb7) store a
    ``q8`` matrix as one float16 tensor without a scale; both forms are read.
    """
    if kind == "q8" and f"{name}.scale" not in tensors:
        return [name]
    return file_names(name, kind)


def decode_tensor(name: str, tensors: dict[str, np.ndarray], kind: Storage) -> np.ndarray:
    """Float32 weight ``name`` rebuilt from its file tensors.

    Raises:
        ValueError: a tensor is missing or has the wrong type or shape.
    """
    names = names_in_file(name, tensors, kind)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise ValueError(f"weight {missing[0]!r} is missing")
    if len(names) == 1:
        if tensors[name].dtype not in _FLOATS:
            raise ValueError(f"weight {name!r}: stored as {tensors[name].dtype}, expected a float")
        return tensors[name].astype(np.float32)
    values, scale = tensors[name], tensors[f"{name}.scale"]
    if (values.dtype != np.int8 or scale.dtype != np.float16 or values.ndim != 2
            or scale.shape != values.shape[:1]):
        raise ValueError(f"weight {name!r}: q8 tensors have unexpected types or shapes")
    return values.astype(np.float32) * scale.astype(np.float32)[:, None]


def rounded(array: np.ndarray, kind: Storage) -> np.ndarray:
    """``array`` as the decoder will see it after storage as ``kind``."""
    return decode_tensor("w", encode_tensor("w", array, kind), kind)
