"""How the network weights of a field are stored in a ``.shac`` file.

Four storage kinds:

- ``"f32"``: float32 (the tiny latent decoder);
- ``"f16"``: float16 (head biases before format version 5);
- ``"q8"``: a matrix ``[R, C]`` as int8 values with one float16 scale per row
  (``w ~ q * scale``, ``|q| <= 127``), stored as two tensors ``NAME`` and ``NAME.scale``
  (head matrices before format version 5);
- ``"step"``: any tensor as integers times one power-of-two step per tensor,
  ``w ~ q * 2^e`` with ``e = floor(log2(rms(w))) - bits`` (``bits``: the precision
  below the tensor's RMS), stored as ``NAME`` (int32 values, same shape) and
  ``NAME.exp`` (int8 ``[1]``: ``e``). From format version 5 the writer entropy-codes
  int32 tensors (:mod:`wisp_shacira.codec.head_io`), so a step costs the entropy of
  its integers, not a fixed width: on a Kodak model, ``bits`` 4 coded the heads in 1.5
  KB instead of 2.4 KB (int8 rows) at -0.01 dB, 3 in 1.3 KB at -0.16 dB.

``q * 2^e`` is exact in float32 (``|q| < 2^24``), so every machine rebuilds the same
weights. The trainer rounds the in-memory weights with :func:`rounded` before measuring
quality, and the decoder rebuilds exactly those values with :func:`decode_tensor`, which
recognises the kind from the tensors in the file.

>>> import numpy as np
>>> w = np.array([[0.5, -0.25], [0.0, 0.0]], dtype=np.float32)
>>> parts = encode_tensor("w", w, "q8")
>>> sorted(parts), parts["w"].dtype.name, parts["w.scale"].dtype.name
(['w', 'w.scale'], 'int8', 'float16')
>>> bool(np.array_equal(decode_tensor("w", parts), rounded(w, "q8")))
True
>>> parts = encode_tensor("w", np.array([0.3, -0.2, 0.05, 0.0], np.float32), "step", bits=4)
>>> parts["w"].tolist(), int(parts["w.exp"][0])
([38, -26, 6, 0], -7)
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

Storage = Literal["f32", "f16", "q8", "step"]
_Q8_MAX = 127
MAX_STEP_BITS = 16
"""Largest ``bits`` of the ``step`` kind (values then stay far below 2^24)."""
_MAX_STEP_VALUE = 1 << 20
_EXP_RANGE = (-126, 127)


def file_names(name: str, kind: Storage) -> list[str]:
    """Names of the tensors that hold weight ``name`` in the file."""
    suffix = {"q8": ".scale", "step": ".exp"}.get(kind)
    return [name] if suffix is None else [name, name + suffix]


def _step_exponent(array: np.ndarray, bits: int) -> int:
    """``floor(log2(rms)) - bits``, or the coarsest exponent from 2 below that up at which
    ``array`` is already exact (so rounding rounded weights again changes nothing, although
    their RMS moved)."""
    wide = array.astype(np.float64)
    rms = float(np.sqrt(np.mean(np.square(wide)))) if array.size else 0.0
    if rms == 0.0:
        return 0
    exp = int(min(max(math.floor(math.log2(rms)) - bits, _EXP_RANGE[0]), _EXP_RANGE[1]))
    for coarse in range(min(exp + 8, _EXP_RANGE[1]), max(exp - 3, _EXP_RANGE[0] - 1), -1):
        scaled = np.ldexp(wide, -coarse)
        if np.array_equal(scaled, np.round(scaled)) and np.abs(scaled).max() < _MAX_STEP_VALUE:
            return coarse
    return exp


def _encode_step(name: str, array: np.ndarray, bits: int) -> dict[str, np.ndarray]:
    if not 0 <= bits <= MAX_STEP_BITS:
        raise ValueError(f"weight {name!r}: step precision {bits} outside 0..{MAX_STEP_BITS}")
    exp = _step_exponent(array, bits)
    values = np.round(np.ldexp(array.astype(np.float64), -exp))
    if values.size and np.abs(values).max() >= _MAX_STEP_VALUE:
        raise ValueError(f"weight {name!r}: an outlier of {np.abs(array).max():.3g} is "
                         f"2^20 steps of 2^{exp} or more (rms {np.sqrt(np.mean(array**2)):.3g})")
    return {name: values.astype(np.int32), f"{name}.exp": np.array([exp], dtype=np.int8)}


def encode_tensor(name: str, array: np.ndarray, kind: Storage,
                  bits: int = 4) -> dict[str, np.ndarray]:
    """File tensors of weight ``name``.

    Args:
        array: float weights; ``[R, C]`` for ``"q8"``.
        bits: precision of the ``"step"`` kind below the tensor's RMS (0..16).
    """
    array = np.asarray(array, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"weight {name!r} is not finite")
    if kind == "f32":
        return {name: array}
    if kind == "f16":
        return {name: array.astype(np.float16)}
    if kind == "step":
        return _encode_step(name, array, bits)
    if array.ndim != 2:
        raise ValueError(f"weight {name!r}: q8 storage needs a matrix, got shape {array.shape}")
    scale = (np.abs(array).max(axis=1) / _Q8_MAX).astype(np.float16)
    scale[scale == 0] = 1.0
    if not np.all(np.isfinite(scale)):
        raise ValueError(f"weight {name!r}: values too large for a float16 row scale")
    values = np.clip(np.round(array / scale.astype(np.float32)[:, None]), -_Q8_MAX, _Q8_MAX)
    return {name: values.astype(np.int8), f"{name}.scale": scale}


_FLOATS = (np.dtype(np.float16), np.dtype(np.float32))


def _coded_kind(name: str, tensors: dict[str, np.ndarray]) -> Storage | None:
    """``"step"`` or ``"q8"`` when ``tensors`` hold weight ``name`` with that kind's second
    tensor, else None (a plain tensor)."""
    for kind in ("step", "q8"):
        if file_names(name, kind)[1] in tensors:
            return kind
    return None


def names_in_file(name: str, tensors: dict[str, np.ndarray]) -> list[str]:
    """Names of the tensors that hold weight ``name`` in a file with ``tensors``: a
    ``step`` weight has ``NAME.exp``, a ``q8`` one ``NAME.scale`` (files written before
    int8 heads, format version 1 up to commit e4badb7, store such a matrix as one float16
    tensor), a float one only ``NAME``."""
    kind = _coded_kind(name, tensors)
    return [name] if kind is None else file_names(name, kind)


def kinds_in_file(tensors: dict[str, np.ndarray]) -> set[Storage]:
    """The storage kinds of the weights in a file with ``tensors`` (``"step"``, ``"q8"``;
    ``"f16"`` / ``"f32"`` for weights stored as plain floats)."""
    parts = {part for name in tensors for part in names_in_file(name, tensors)[1:]}
    kinds: set[Storage] = set()
    for name, array in tensors.items():
        kind = _coded_kind(name, tensors)
        if kind is None and array.dtype in _FLOATS:
            kind = "f16" if array.dtype == np.float16 else "f32"
        if name not in parts and kind is not None:
            kinds.add(kind)
    return kinds


def _decode_step(name: str, values: np.ndarray, exp: np.ndarray) -> np.ndarray:
    if values.dtype != np.int32 or exp.dtype != np.int8 or exp.shape != (1,):
        raise ValueError(f"weight {name!r}: step tensors have unexpected types or shapes")
    if not _EXP_RANGE[0] <= int(exp[0]) <= _EXP_RANGE[1]:
        raise ValueError(f"weight {name!r}: step exponent {int(exp[0])} outside {_EXP_RANGE}")
    if values.size and np.abs(values.astype(np.int64)).max() >= _MAX_STEP_VALUE:
        raise ValueError(f"weight {name!r}: step values of 2^20 or more")
    return values.astype(np.float32) * np.float32(2.0 ** int(exp[0]))


def decode_tensor(name: str, tensors: dict[str, np.ndarray]) -> np.ndarray:
    """Float32 weight ``name`` rebuilt from its file tensors (any storage kind).

    Raises:
        ValueError: a tensor is missing or has the wrong type or shape.
    """
    kind = _coded_kind(name, tensors)
    if name not in tensors:
        raise ValueError(f"weight {name!r} is missing")
    if kind is None:
        if tensors[name].dtype not in _FLOATS:
            raise ValueError(f"weight {name!r}: stored as {tensors[name].dtype}, expected a float")
        return tensors[name].astype(np.float32)
    second = tensors[file_names(name, kind)[1]]
    if kind == "step":
        return _decode_step(name, tensors[name], second)
    values, scale = tensors[name], second
    if (values.dtype != np.int8 or scale.dtype != np.float16 or values.ndim != 2
            or scale.shape != values.shape[:1]):
        raise ValueError(f"weight {name!r}: q8 tensors have unexpected types or shapes")
    return values.astype(np.float32) * scale.astype(np.float32)[:, None]


def rounded(array: np.ndarray, kind: Storage, bits: int = 4) -> np.ndarray:
    """``array`` as the decoder will see it after storage as ``kind``."""
    return decode_tensor("w", encode_tensor("w", array, kind, bits))
