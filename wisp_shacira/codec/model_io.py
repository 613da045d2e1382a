"""A compressed model <-> a ``.shac`` file.

Section order (coarse to fine, so a prefix is useful)::

    CONFIG   zlib-compressed JSON: everything needed to rebuild the model
    TABLES   latent layout (levels, rows per level, D) + the entropy model: frequency
             tables (one per dimension, or one per level and dimension, whichever file
             is smaller; versions 1-3) or the context model's parameters (version 4)
    WEIGHTS  named network tensors (decoder, MLP heads) in float16/float32
    LEVEL 0 .. LEVEL L-1   entropy-coded integer latents, one section per level

The model is described by plain data (dict, numpy arrays); this module knows
nothing of tasks or torch modules. Field-format details: ``docs/bitstream.md``.
Where each section lies in a file, for prefix (LOD) reading: :func:`section_offsets`,
:func:`level_prefix_bytes`, :func:`prefix_nbytes`; nothing outside the codec needs
to know the container's layout.
"""
from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from wisp_shacira.codec import limits
from wisp_shacira.codec.coder import (CoderError, decode_symbols, encode_symbols,
                                      table_precision)
from wisp_shacira.codec.container import (CODER_EXACT, CODER_LEGACY, CONTEXT_VERSION,
                                          WEIGHTS_VERSION, Container, Reader, encode_varint,
                                          pack_sections, read_file_bytes, unpack_sections,
                                          unzigzag, zigzag)
from wisp_shacira.codec.context import ContextModel
from wisp_shacira.codec.context_io import (decode_level, encode_level, pack_context_model,
                                           unpack_context_model)
from wisp_shacira.codec.head_io import pack_config, pack_weights, read_config, unpack_weights
from wisp_shacira.codec.tables import FrequencyTable, histogram_table
from wisp_shacira.errors import BitstreamError
from wisp_shacira.outputs import write_atomic

KIND_CONFIG, KIND_TABLES, KIND_WEIGHTS, KIND_LEVEL = 1, 2, 3, 4
KIND_NAMES = {KIND_CONFIG: "config", KIND_TABLES: "tables", KIND_WEIGHTS: "weights",
              KIND_LEVEL: "level"}
TABLES_SHARED, TABLES_PER_LEVEL, TABLES_CONTEXT = 0, 1, 2
_ALL_MODES = (TABLES_SHARED, TABLES_PER_LEVEL, TABLES_CONTEXT)


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
        context: the context model that codes the levels instead of any table (format
            version 4; ``tables`` is then empty).
        row_masks: per level, which rows the file codes (``[rows_l]`` bool; None = all);
            the other rows are zero. A file whose CONFIG has ``coded_rows`` codes its
            levels so; the masks follow from the CONFIG by a task's function (passed to
            :func:`decode_model` or registered, :func:`register_row_masks`), the codec
            only applies them.
    """

    config: dict
    tables: list[FrequencyTable]
    weights: dict[str, np.ndarray]
    level_rows: list[int]
    levels: list[np.ndarray] = field(default_factory=list)
    problem: str | None = None
    level_tables: list[list[FrequencyTable]] | None = None
    context: ContextModel | None = None
    row_masks: list[np.ndarray | None] | None = None

    @property
    def num_levels(self) -> int:
        return len(self.level_rows)

    @property
    def latent_dim(self) -> int:
        if self.context is not None:
            return len(self.context.dims[0])
        return len(self.level_tables[0]) if self.level_tables else len(self.tables)

    def tables_of(self, level: int) -> list[FrequencyTable]:
        """The D tables that code level ``level``."""
        return self.tables if self.level_tables is None else self.level_tables[level]

    def mask_of(self, level: int) -> np.ndarray | None:
        """The rows level ``level`` codes (None = all)."""
        return None if self.row_masks is None else self.row_masks[level]


def coded_rows(level: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The rows of ``level [rows, D]`` that a file codes under ``mask`` (see
    :attr:`ShacModel.row_masks`)."""
    return level if mask is None else level[mask]


def _pack_table(table: FrequencyTable, precision: int) -> bytes:
    out = encode_varint(zigzag(table.low)) + encode_varint(table.num_symbols)
    if table.num_symbols > 1:
        out += table.freqs.astype("<u4" if precision > 16 else "<u2").tobytes()
    return out


def _pack_tables(model: ShacModel, precision: int, version: int = 3) -> bytes:
    """The tables section; version 1 has no table-mode byte (shared tables only)."""
    if model.context is not None:
        mode = TABLES_CONTEXT
    else:
        mode = TABLES_SHARED if model.level_tables is None else TABLES_PER_LEVEL
    out = bytearray([precision] + ([mode] if version >= 2 else []))
    out += encode_varint(model.latent_dim)
    out += encode_varint(len(model.level_rows))
    for rows in model.level_rows:
        out += encode_varint(rows)
    if model.context is not None:
        return bytes(out + pack_context_model(model.context))
    groups = [model.tables] if model.level_tables is None else model.level_tables
    for table in (t for group in groups for t in group):
        out += _pack_table(table, precision)
    return bytes(out)


def _read_table(reader: Reader, precision: int) -> FrequencyTable:
    low = unzigzag(reader.varint(1 << 32, "a table's smallest symbol"))
    count = reader.varint(min(limits.MAX_TABLE_SYMBOLS, 1 << precision), "a table's symbol count")
    if count == 0 or low < -(1 << 31) or low + count - 1 >= 1 << 31:
        raise ValueError(f"table of {count} symbols from {low} is not a valid int32 range")
    if count == 1:
        return FrequencyTable(low, np.array([1 << precision], dtype=np.uint32))
    dtype = np.dtype("<u4" if precision > 16 else "<u2")
    freqs = np.frombuffer(reader.take(count * dtype.itemsize), dtype=dtype).astype(np.uint32)
    table = FrequencyTable(low, freqs)
    if freqs.min() < 1 or table_precision(table) != precision:
        raise ValueError(f"table frequencies must be >= 1 and sum to 2^{precision}, got "
                         f"minimum {freqs.min()} and sum {int(freqs.astype(np.int64).sum())}")
    return table


@dataclass
class _Tables:
    """What a TABLES section holds (one of the three entropy models)."""

    level_rows: list[int]
    tables: list[FrequencyTable] = field(default_factory=list)
    level_tables: list[list[FrequencyTable]] | None = None
    context: ContextModel | None = None


def _unpack_tables(data: bytes, version: int) -> _Tables:
    """The TABLES section of a file of ``version`` (1 has no mode, 4 adds the context mode)."""
    reader = Reader(data, "tables section")
    precision = reader.u8()
    top = 24 if version >= 3 else 31
    if not 1 <= precision <= top:
        raise ValueError(f"table precision {precision} is outside 1..{top}")
    mode = reader.u8() if version >= 2 else TABLES_SHARED
    modes = {CONTEXT_VERSION: (TABLES_CONTEXT,), WEIGHTS_VERSION: _ALL_MODES}.get(
        version, (TABLES_SHARED, TABLES_PER_LEVEL))
    if mode not in modes:
        raise ValueError(f"table mode {mode} in a version-{version} file (expected "
                         f"{' or '.join(map(str, modes))})")
    dims = reader.varint(limits.MAX_LATENT_DIM, "the latent dimension")
    num_levels = reader.varint(limits.MAX_LEVELS, "the level count")
    if dims == 0 or num_levels == 0:
        raise ValueError(f"a model needs >= 1 level and latent dimension, got {num_levels}, {dims}")
    level_rows = [reader.varint(limits.MAX_LEVEL_ROWS, f"the rows of level {level}")
                  for level in range(num_levels)]
    if mode == TABLES_CONTEXT:
        result = _Tables(level_rows, context=unpack_context_model(reader, level_rows, dims,
                                                                   precision))
    else:
        groups = [[_read_table(reader, precision) for _ in range(dims)]
                  for _ in range(1 if mode == TABLES_SHARED else num_levels)]
        result = (_Tables(level_rows, groups[0]) if mode == TABLES_SHARED
                  else _Tables(level_rows, level_tables=groups))
    reader.finish()
    return result


def _level_payloads(model: ShacModel, coder: int) -> list[bytes]:
    payloads = []
    for index, (rows, level) in enumerate(zip(model.level_rows, model.levels)):
        if level.shape != (rows, model.latent_dim):
            raise ValueError(f"level of shape {level.shape}, expected {(rows, model.latent_dim)}")
        mask = model.mask_of(index)
        if mask is not None and level[~mask].any():
            raise ValueError(f"level {index} has nonzero latents in rows it does not code")
        level = coded_rows(level, mask)
        if model.context is not None:
            context = model.context
            payloads.append(encode_level(level, context.shapes[index], context.dims[index],
                                         coder, context.precision))
        else:
            payloads.append(encode_symbols(level, model.tables_of(index), coder))
    return payloads


def _decode_level(model: ShacModel, index: int, payload: bytes, coder: int) -> np.ndarray:
    mask, context = model.mask_of(index), model.context
    rows = model.level_rows[index] if mask is None else int(mask.sum())
    if context is not None:
        coded = decode_level(payload, rows, context.shapes[index], context.dims[index], coder,
                             context.precision)
    else:
        coded = decode_symbols(payload, rows, model.tables_of(index), coder)
    if mask is None:
        return coded
    level = np.zeros((model.level_rows[index], model.latent_dim), dtype=np.int32)
    level[mask] = coded
    return level


RowMasks = Callable[["ShacModel", str], "list[np.ndarray | None]"]
"""``row_masks(model, name)``: the masks of the file ``name`` whose CONFIG has
``coded_rows``, from its head (``model``: CONFIG, tables, weights; no level decoded
yet); raises :class:`BitstreamError` for a head it cannot use."""

_ROW_MASKS: dict[str, RowMasks] = {}


def register_row_masks(kind: str, row_masks: RowMasks) -> None:
    """Make :func:`decode_model` compute the masks of files with ``coded_rows: kind``
    with ``row_masks`` (the codec cannot: the rows follow from a task's geometry; the
    scene task registers ``"occupancy"`` when it is imported)."""
    _ROW_MASKS[kind] = row_masks


def _apply_row_masks(model: ShacModel, row_masks: RowMasks | None, name: str) -> None:
    """Set ``model.row_masks`` from its CONFIG's ``coded_rows`` (checked)."""
    kind = model.config.get("coded_rows")
    if kind is None:
        return
    row_masks = row_masks or _ROW_MASKS.get(str(kind))
    if row_masks is None:
        raise BitstreamError(f"{name}: its levels code only the rows that coded_rows "
                             f"{kind!r} selects, which this decoder does not know (scene "
                             f"files: import wisp_shacira.tasks.nerf first)")
    masks = row_masks(model, name)
    if len(masks) != model.num_levels or any(
            m is not None and (m.dtype != bool or m.shape != (rows,))
            for m, rows in zip(masks, model.level_rows)):
        raise BitstreamError(f"{name}: the row masks do not fit the file's levels")
    model.row_masks = list(masks)


def _with_level_tables(model: ShacModel, precision: int) -> ShacModel:
    """``model`` with one histogram table per level and dimension."""
    tables = [[histogram_table(coded_rows(level, model.mask_of(index))[:, dim], precision)
               for dim in range(model.latent_dim)] for index, level in enumerate(model.levels)]
    return dataclasses.replace(model, tables=[], level_tables=tables)


def _check_version(model: ShacModel, precision: int, version: int) -> None:
    if version not in (1, 2, 3, CONTEXT_VERSION, WEIGHTS_VERSION) or not (
            1 <= precision <= (24 if version >= 3 else 16)):
        raise ValueError(f"cannot write version {version} at table precision {precision}")
    if model.context is not None and version not in (CONTEXT_VERSION, WEIGHTS_VERSION):
        raise ValueError(f"a context model is written as version {WEIGHTS_VERSION} (or "
                         f"{CONTEXT_VERSION}), not {version}")
    if version == CONTEXT_VERSION and model.context is None:
        raise ValueError(f"version {CONTEXT_VERSION} files need a context model")


def encode_model(model: ShacModel, precision: int = 16, version: int | None = None) -> bytes:
    """Serialise a model with all its levels into ``.shac`` bytes.

    Written as version 5 unless ``version`` names an older one (to test the readers of
    old files and reproduce them byte for byte: 4 for a context model, 3, 2 or 1 for
    tables). With shared tables (``model.level_tables`` None), per-level histogram tables
    are tried too and the smaller file is kept.
    """
    if len(model.levels) != model.num_levels:
        raise ValueError(f"model has {len(model.levels)} decoded levels, expected {model.num_levels}")
    version = WEIGHTS_VERSION if version is None else version
    if model.context is not None:
        precision = model.context.precision
    _check_version(model, precision, version)
    coder = CODER_EXACT if version >= 3 else CODER_LEGACY
    head = [(KIND_CONFIG, pack_config(model.config, version))]
    weights = (KIND_WEIGHTS, pack_weights(model.weights, version))
    candidates = [model]
    if (model.context is None and model.level_tables is None and model.num_levels > 1
            and version >= 2):
        candidates.append(_with_level_tables(model, precision))
    files = []
    for candidate in candidates:
        sections = head + [(KIND_TABLES, _pack_tables(candidate, precision, version)), weights]
        sections += [(KIND_LEVEL, payload)
                     for payload in _level_payloads(candidate, coder)]
        files.append(pack_sections(sections, version, coder))
    return min(files, key=len)


def write_shac(path: str | os.PathLike, model: ShacModel, precision: int = 16) -> int:
    """Write ``model`` atomically to ``path``; returns the file size in bytes."""
    data = encode_model(model, precision)
    write_atomic(path, data)
    return len(data)


def _check_structure(container: Container, num_levels: int, name: str) -> None:
    """Sections must be config, tables, weights, then exactly one level section per level."""
    kinds = [s.kind for s in container.sections]
    if container.declared != 3 + num_levels:
        raise BitstreamError(f"{name}: the header declares {container.declared} sections, but a "
                             f"model of {num_levels} levels has {3 + num_levels}")
    if kinds[3:] != [KIND_LEVEL] * len(kinds[3:]):
        raise BitstreamError(f"{name}: unexpected section order {kinds}")


def _read_head(container: Container, name: str) -> ShacModel:
    """Parse CONFIG, TABLES and WEIGHTS (no latent level)."""
    sections = container.sections
    if len(sections) < 3:
        raise BitstreamError(f"{name}: too short to hold a model ({len(sections)} intact sections)")
    if [s.kind for s in sections[:3]] != [KIND_CONFIG, KIND_TABLES, KIND_WEIGHTS]:
        raise BitstreamError(f"{name}: unexpected section order {[s.kind for s in sections]}")
    try:
        config = read_config(sections[0].payload, container.version)
        tables = _unpack_tables(sections[1].payload, container.version)
        weights = unpack_weights(sections[2].payload, container.version)
    except (ValueError, zlib.error, RecursionError) as exc:
        raise BitstreamError(f"{name}: malformed header sections ({exc})") from exc
    _check_structure(container, len(tables.level_rows), name)
    return ShacModel(config, tables.tables, weights, tables.level_rows, problem=container.problem,
                     level_tables=tables.level_tables, context=tables.context)


def decode_model(data: bytes, name: str = "<bytes>", max_lod: int | None = None,
                 partial: bool = False, row_masks: RowMasks | None = None) -> ShacModel:
    """Parse ``.shac`` bytes, validating every declared size before it is allocated.

    Args:
        max_lod: decode levels ``0..max_lod - 1`` only (None = all).
        partial: accept a truncated/damaged stream and decode the levels it fully holds.
        row_masks: computes the coded rows of a file whose CONFIG has ``coded_rows``
            (needed to decode any level of such a file; default: the function
            registered for its kind, :func:`register_row_masks`).
    Raises:
        BitstreamError: anything that prevents decoding what was asked for, including a
            decode that would need more memory than :func:`limits.max_memory`.
    """
    container = unpack_sections(data, name, partial=partial)
    model = _read_head(container, name)
    wanted = model.num_levels if max_lod is None else max(0, min(max_lod, model.num_levels))
    rows = sum(model.level_rows[:wanted])
    per_entry = 12 if model.context is None else 40   # the context decoder's work arrays
    limits.check_memory(rows * model.latent_dim * per_entry, f"{rows} latent rows", name)
    if wanted:
        _apply_row_masks(model, row_masks, name)
    for index, section in enumerate(container.sections[3:3 + wanted]):
        try:
            model.levels.append(_decode_level(model, index, section.payload, container.coder))
        except ValueError as exc:
            raise BitstreamError(f"{name}: level {index}: {exc}") from exc
        except CoderError as exc:
            raise BitstreamError(f"{name}: {exc}") from exc
    return model


def read_shac(path: str | os.PathLike, max_lod: int | None = None,
              partial: bool = False, row_masks: RowMasks | None = None) -> ShacModel:
    """Read and decode a ``.shac`` file (see :func:`decode_model`)."""
    return decode_model(read_file_bytes(path), str(path), max_lod, partial, row_masks)


@dataclass(frozen=True)
class SectionSpan:
    """Where one section lies in a file: bytes ``start .. end - 1``, its kind byte,
    length and checksum included, so a prefix of ``end`` bytes holds the section.

    Attributes:
        name: ``"config"``, ``"tables"``, ``"weights"``, ``"level 0"``, ``"level 1"``, ...
            (``"kind K"`` for a kind this build does not know).
        kind: the section's kind code.
    """

    name: str
    kind: int
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def _as_bytes(source: bytes | bytearray | memoryview | str | os.PathLike,
              name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    return read_file_bytes(source), name or str(source)


def _spans(container: Container) -> list[SectionSpan]:
    spans, level = [], 0
    for section in container.sections:
        label = KIND_NAMES.get(section.kind, f"kind {section.kind}")
        if section.kind == KIND_LEVEL:
            label, level = f"level {level}", level + 1
        spans.append(SectionSpan(label, section.kind, section.start, section.end))
    return spans


def section_offsets(source: bytes | bytearray | memoryview | str | os.PathLike,
                    name: str | None = None) -> list[SectionSpan]:
    """Where each section of a file (or of its bytes) starts and ends, in file order.

    The file is read in partial mode: a truncated or damaged file gives the spans of
    its intact sections before the first missing or damaged one (a stream prefix is
    fine). The file header (magic .. section count) is bytes ``0 .. spans[0].start - 1``.

    Raises:
        BitstreamError: unreadable file, not a .shac file, unsupported version or coder.
    """
    data, name = _as_bytes(source, name)
    return _spans(unpack_sections(data, name, partial=True))


def level_prefix_bytes(source: bytes | bytearray | memoryview | str | os.PathLike,
                       name: str | None = None) -> list[int]:
    """``[k - 1]`` = bytes of the shortest prefix that holds levels ``0 .. k - 1``,
    i.e. that decodes at LOD ``k``; one entry per intact level section."""
    return [span.end for span in section_offsets(source, name) if span.kind == KIND_LEVEL]


def prefix_nbytes(source: bytes | bytearray | memoryview | str | os.PathLike, levels: int,
                  name: str | None = None) -> int:
    """Bytes needed for the first ``levels`` levels (0: CONFIG, TABLES and WEIGHTS only).

    Raises:
        BitstreamError: the file (or prefix) holds fewer intact sections than that.
    """
    data, name = _as_bytes(source, name)
    spans = section_offsets(data, name)
    if levels < 0 or len(spans) < 3 + levels:
        held = max(0, len(spans) - 3)
        raise BitstreamError(f"{name}: no prefix holds {levels} levels "
                             f"({len(spans)} intact sections, {held} of them levels)")
    return spans[2 + levels].end


def level_payload_bytes(data: bytes) -> int:
    """Bytes of the entropy-coded latents of a file: its level payloads, without the
    section headers and checksums."""
    sections = unpack_sections(data, partial=True).sections
    return sum(len(s.payload) for s in sections if s.kind == KIND_LEVEL)


def section_summary(path: str | os.PathLike) -> tuple[list[tuple[str, int]], int, str | None]:
    """Names and byte sizes (header included) of the sections of a file.

    Returns:
        (rows of (name, bytes), total file bytes, problem or None)
    """
    data = read_file_bytes(path)
    container = unpack_sections(data, str(path), partial=True)
    rows = [(span.name, span.nbytes) for span in _spans(container)]
    return rows, len(data), container.problem
