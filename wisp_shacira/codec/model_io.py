"""A compressed model <-> a ``.shac`` file.

Section order (coarse to fine, so a prefix is useful)::

    CONFIG   zlib-compressed JSON: everything needed to rebuild the model
    TABLES   latent layout (levels, rows per level, D) + frequency tables: one per
             dimension, or one per level and dimension, whichever file is smaller
    WEIGHTS  named network tensors (decoder, MLP heads) in float16/float32
    LEVEL 0 .. LEVEL L-1   entropy-coded integer latents, one section per level

The model is described by plain data (dict, numpy arrays); this module knows
nothing of tasks or torch modules. Field-format details: ``docs/bitstream.md``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from wisp_shacira.codec.coder import decode_symbols, encode_symbols
from wisp_shacira.codec.container import (decode_varint, encode_varint, pack_sections,
                                          read_file_bytes, unpack_sections, write_atomic)
from wisp_shacira.entropy.tables import FrequencyTable, build_table, histogram_table
from wisp_shacira.errors import BitstreamError

KIND_CONFIG, KIND_TABLES, KIND_WEIGHTS, KIND_LEVEL = 1, 2, 3, 4
KIND_NAMES = {KIND_CONFIG: "config", KIND_TABLES: "tables", KIND_WEIGHTS: "weights",
              KIND_LEVEL: "level"}
_DTYPES = {0: np.dtype("<f2"), 1: np.dtype("<f4"), 2: np.dtype("<i4"), 3: np.dtype("i1")}
TABLES_SHARED, TABLES_PER_LEVEL = 0, 1


@dataclass
class ShacModel:
    """Plain-data content of a ``.shac`` file.

    Attributes:
        config: JSON-serialisable description (task, grid, field, task metadata).
        tables: D frequency tables, one per latent dimension, for every level (empty
            when ``level_tables`` is set).
        weights: named float16/float32 arrays.
        level_rows: rows of every level's latent table (all levels, decoded or not).
        levels: decoded integer latents ``[rows_l, D]`` int32 for levels 0..len-1.
        problem: why fewer levels than ``level_rows`` were decoded, if so.
        level_tables: D tables per level instead of ``tables`` (None = shared tables).
            :func:`encode_model` fills it in when per-level tables make a smaller file.
    """

    config: dict
    tables: list[FrequencyTable]
    weights: dict[str, np.ndarray]
    level_rows: list[int]
    levels: list[np.ndarray] = field(default_factory=list)
    problem: str | None = None
    level_tables: list[list[FrequencyTable]] | None = None

    @property
    def num_levels(self) -> int:
        return len(self.level_rows)

    @property
    def latent_dim(self) -> int:
        return len(self.level_tables[0]) if self.level_tables else len(self.tables)

    def tables_of(self, level: int) -> list[FrequencyTable]:
        """The D tables that code level ``level``."""
        return self.tables if self.level_tables is None else self.level_tables[level]


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _pack_table(table: FrequencyTable, precision: int) -> bytes:
    out = encode_varint(_zigzag(table.low)) + encode_varint(table.num_symbols)
    if table.num_symbols > 1:
        out += table.freqs.astype("<u4" if precision > 16 else "<u2").tobytes()
    return out


def _pack_tables(model: ShacModel, precision: int) -> bytes:
    mode = TABLES_SHARED if model.level_tables is None else TABLES_PER_LEVEL
    out = bytearray([precision, mode]) + encode_varint(model.latent_dim)
    out += encode_varint(len(model.level_rows))
    for rows in model.level_rows:
        out += encode_varint(rows)
    groups = [model.tables] if model.level_tables is None else model.level_tables
    for table in (t for group in groups for t in group):
        out += _pack_table(table, precision)
    return bytes(out)


def _unpack_table(data: bytes, pos: int, precision: int) -> tuple[FrequencyTable, int]:
    low, pos = decode_varint(data, pos)
    count, pos = decode_varint(data, pos)
    if count == 1:
        return build_table(np.ones(1), _unzigzag(low), precision), pos
    dtype = np.dtype("<u4" if precision > 16 else "<u2")
    end = pos + count * dtype.itemsize
    if count == 0 or end > len(data):
        raise ValueError("frequency table runs past the section")
    freqs = np.frombuffer(data[pos:end], dtype=dtype).astype(np.uint32)
    return FrequencyTable(_unzigzag(low), freqs), end


def _unpack_tables(data: bytes, version: int) -> tuple[list[int], list[FrequencyTable],
                                                       list[list[FrequencyTable]] | None]:
    """(rows per level, shared tables, per-level tables or None); version 1 has no mode."""
    precision, pos = data[0], 1
    mode = TABLES_SHARED
    if version >= 2:
        mode, pos = data[1], 2
        if mode not in (TABLES_SHARED, TABLES_PER_LEVEL):
            raise ValueError(f"unknown table mode {mode}")
    dims, pos = decode_varint(data, pos)
    num_levels, pos = decode_varint(data, pos)
    level_rows = []
    for _ in range(num_levels):
        rows, pos = decode_varint(data, pos)
        level_rows.append(rows)
    groups = []
    for _ in range(1 if mode == TABLES_SHARED else num_levels):
        group = []
        for _ in range(dims):
            table, pos = _unpack_table(data, pos, precision)
            group.append(table)
        groups.append(group)
    if mode == TABLES_SHARED:
        return level_rows, groups[0], None
    return level_rows, [], groups


def _pack_weights(weights: dict[str, np.ndarray]) -> bytes:
    codes = {dtype: code for code, dtype in _DTYPES.items()}
    out = bytearray(encode_varint(len(weights)))
    for name, array in weights.items():
        array = np.ascontiguousarray(array)
        if array.dtype.newbyteorder("<") not in codes:
            raise ValueError(f"weight {name!r}: unsupported dtype {array.dtype}")
        raw_name = name.encode()
        out += encode_varint(len(raw_name)) + raw_name
        out += bytes([codes[array.dtype.newbyteorder("<")], array.ndim])
        for size in array.shape:
            out += encode_varint(size)
        out += array.astype(array.dtype.newbyteorder("<")).tobytes()
    return bytes(out)


def _unpack_weights(data: bytes) -> dict[str, np.ndarray]:
    count, pos = decode_varint(data, 0)
    weights = {}
    for _ in range(count):
        length, pos = decode_varint(data, pos)
        name = data[pos:pos + length].decode()
        dtype, ndim = _DTYPES[data[pos + length]], data[pos + length + 1]
        pos += length + 2
        shape = []
        for _ in range(ndim):
            size, pos = decode_varint(data, pos)
            shape.append(size)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        weights[name] = np.frombuffer(data[pos:pos + nbytes], dtype=dtype).reshape(shape).copy()
        pos += nbytes
    return weights


def _level_payloads(model: ShacModel) -> list[bytes]:
    payloads = []
    for index, (rows, level) in enumerate(zip(model.level_rows, model.levels)):
        if level.shape != (rows, model.latent_dim):
            raise ValueError(f"level of shape {level.shape}, expected {(rows, model.latent_dim)}")
        payloads.append(encode_symbols(level, model.tables_of(index)))
    return payloads


def _with_level_tables(model: ShacModel, precision: int) -> ShacModel:
    """``model`` with one histogram table per level and dimension."""
    tables = [[histogram_table(level[:, dim], precision) for dim in range(model.latent_dim)]
              for level in model.levels]
    return dataclasses.replace(model, tables=[], level_tables=tables)


def encode_model(model: ShacModel, precision: int = 16) -> bytes:
    """Serialise a model with all its levels into ``.shac`` bytes.

    With shared tables (``model.level_tables`` None), per-level histogram tables are
    tried too and the smaller file is kept.
    """
    if len(model.levels) != model.num_levels:
        raise ValueError(f"model has {len(model.levels)} decoded levels, expected {model.num_levels}")
    config = zlib.compress(json.dumps(model.config, separators=(",", ":")).encode(), 9)
    head = [(KIND_CONFIG, config)]
    weights = (KIND_WEIGHTS, _pack_weights(model.weights))
    candidates = [model]
    if model.level_tables is None and model.num_levels > 1:
        candidates.append(_with_level_tables(model, precision))
    files = []
    for candidate in candidates:
        sections = head + [(KIND_TABLES, _pack_tables(candidate, precision)), weights]
        sections += [(KIND_LEVEL, payload) for payload in _level_payloads(candidate)]
        files.append(pack_sections(sections))
    return min(files, key=len)


def write_shac(path: str | os.PathLike, model: ShacModel, precision: int = 16) -> int:
    """Write ``model`` atomically to ``path``; returns the file size in bytes."""
    data = encode_model(model, precision)
    write_atomic(path, data)
    return len(data)


def _check_kinds(sections: list, name: str) -> None:
    expected = [KIND_CONFIG, KIND_TABLES, KIND_WEIGHTS]
    kinds = [s.kind for s in sections[:3]]
    if len(sections) < 3:
        raise BitstreamError(f"{name}: too short to hold a model ({len(sections)} intact sections)")
    if kinds != expected or any(s.kind != KIND_LEVEL for s in sections[3:]):
        raise BitstreamError(f"{name}: unexpected section order {[s.kind for s in sections]}")


def decode_model(data: bytes, name: str = "<bytes>", max_lod: int | None = None,
                 partial: bool = False) -> ShacModel:
    """Parse ``.shac`` bytes.

    Args:
        max_lod: decode levels ``0..max_lod - 1`` only (None = all).
        partial: accept a truncated/damaged stream and decode the levels it fully holds.
    Raises:
        BitstreamError: anything that prevents decoding what was asked for.
    """
    container = unpack_sections(data, name, partial=partial)
    _check_kinds(container.sections, name)
    try:
        config = json.loads(zlib.decompress(container.sections[0].payload))
        level_rows, tables, level_tables = _unpack_tables(container.sections[1].payload,
                                                          container.version)
        weights = _unpack_weights(container.sections[2].payload)
    except (ValueError, KeyError, IndexError, zlib.error) as exc:
        raise BitstreamError(f"{name}: malformed header sections ({exc})") from exc
    model = ShacModel(config, tables, weights, level_rows, problem=container.problem,
                      level_tables=level_tables)
    wanted = len(level_rows) if max_lod is None else min(max_lod, len(level_rows))
    for index, section in enumerate(container.sections[3:3 + wanted]):
        try:
            model.levels.append(decode_symbols(section.payload, level_rows[index],
                                               model.tables_of(index)))
        except ValueError as exc:
            raise BitstreamError(f"{name}: level {index}: {exc}") from exc
    return model


def read_shac(path: str | os.PathLike, max_lod: int | None = None,
              partial: bool = False) -> ShacModel:
    """Read and decode a ``.shac`` file (see :func:`decode_model`)."""
    return decode_model(read_file_bytes(path), str(path), max_lod, partial)


def section_summary(path: str | os.PathLike) -> tuple[list[tuple[str, int]], int, str | None]:
    """Names and byte sizes (header included) of the sections of a file.

    Returns:
        (rows of (name, bytes), total file bytes, problem or None)
    """
    data = read_file_bytes(path)
    container = unpack_sections(data, str(path), partial=True)
    rows, level = [], 0
    for section in container.sections:
        label = KIND_NAMES.get(section.kind, f"kind {section.kind}")
        if section.kind == KIND_LEVEL:
            label, level = f"level {level}", level + 1
        rows.append((label, section.nbytes))
    return rows, len(data), container.problem
