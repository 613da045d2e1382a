"""Coding levels with the context model, fitting its parameters, and its table section.

See :mod:`wisp_shacira.codec.context` for the model. The encoder fits the integer
parameters of every level and dimension to the latents it codes (it knows them all), and
chooses per level and dimension the number of contexts that gives the fewest bits,
side information included; the decoder reads those parameters from the TABLES section.
"""
from __future__ import annotations

import numpy as np

from wisp_shacira.codec import limits
from wisp_shacira.codec.coder import BlockDecoder, encode_blocks
from wisp_shacira.codec.container import Reader, encode_varint, unzigzag, zigzag
from wisp_shacira.codec.context import (CENTRE_ONE, MAX_CONTEXTS, MAX_SHAPE_NDIM, SHARE_ONE,
                                        ContextModel, DimModel, context_table, level_contexts,
                                        line_contexts, scanlines)
from wisp_shacira.codec.tables import DEFAULT_PRECISION

_PARAM_BYTES = 4          # share, ratio_pos, ratio_neg, context count
_CENTRE_BYTES = 2


def _clip(value: float, low: int, high: int) -> int:
    return int(min(max(round(value), low), high))


def _ratio(tail: np.ndarray) -> int:
    """Tail ratio (1/256 units) of a geometric law with the tail's mean ``E[n] = 1/(1-r)``."""
    return _clip(SHARE_ONE * (1.0 - 1.0 / tail.mean()), 0, SHARE_ONE - 1) if tail.size else 0


def _centres(symbols: np.ndarray, contexts: np.ndarray, centre: int, count: int) -> tuple[int, ...]:
    """Centre mass of each of ``count`` contexts (their empirical frequency, quantised)."""
    hits = symbols == centre
    overall = hits.mean() if symbols.size else 0.5
    out = []
    for context in range(count):
        chosen = hits[contexts == context]
        freq = chosen.mean() if chosen.size else overall
        out.append(_clip(freq * CENTRE_ONE, 1, CENTRE_ONE - 1))
    return tuple(out)


def coded_bits(model: DimModel, symbols: np.ndarray, contexts: np.ndarray,
               precision: int = DEFAULT_PRECISION) -> float:
    """Bits the coder spends on ``symbols`` (in ``contexts``) under ``model``."""
    if model.num_symbols == 1:
        return 0.0
    bits = 0.0
    for context in range(model.num_contexts):
        chosen = symbols[np.minimum(contexts, model.num_contexts - 1) == context]
        if chosen.size:
            freqs = context_table(model, context, precision).freqs.astype(np.float64)
            counts = np.bincount(chosen - model.low, minlength=model.num_symbols)
            bits -= float(counts @ (np.log2(freqs) - precision))
    return bits


def fit_dim(symbols: np.ndarray, contexts: np.ndarray,
            precision: int = DEFAULT_PRECISION) -> DimModel:
    """Parameters of one level and dimension for ``symbols: [N]`` with raw ``contexts: [N]``
    (clipped to ``MAX_CONTEXTS - 1``): maximum-likelihood tails and centre masses, and
    the context count with the fewest bits including its side information."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size == 0 or symbols.min() == symbols.max():
        value = int(symbols[0]) if symbols.size else 0
        return DimModel(value, value)
    base = DimModel(int(symbols.min()), int(symbols.max()))
    centre = base.centre
    pos, neg = symbols[symbols > centre] - centre, centre - symbols[symbols < centre]
    share = _clip(SHARE_ONE * pos.size / max(pos.size + neg.size, 1), 1, SHARE_ONE - 1)
    best, best_bits = None, np.inf
    for count in range(1, MAX_CONTEXTS + 1):
        clipped = np.minimum(contexts, count - 1)
        model = DimModel(base.low, base.high, share, _ratio(pos), _ratio(neg),
                         _centres(symbols, clipped, centre, count))
        bits = coded_bits(model, symbols, clipped, precision) + 8 * _CENTRE_BYTES * count
        if bits < best_bits:
            best, best_bits = model, bits
    return best


def fit_context_model(levels: list[np.ndarray], shapes: list[tuple[int, ...]],
                      precision: int = DEFAULT_PRECISION) -> ContextModel:
    """Fit the parameters of every level (``[rows_l, D]`` integers) of the given shapes."""
    dims = []
    for values, shape in zip(levels, shapes):
        fitted = []
        for dim in range(values.shape[1]):
            contexts = level_contexts(values, shape, dim, MAX_CONTEXTS)
            fitted.append(fit_dim(values[:, dim], contexts, precision))
        dims.append(tuple(fitted))
    return ContextModel(tuple(tuple(s) for s in shapes), tuple(dims), precision)


def _level_blocks(values: np.ndarray, shape: tuple[int, ...], dims: tuple[DimModel, ...],
                  precision: int):
    """``(symbols, table)`` blocks of one level in decoding order."""
    lines, length = scanlines(shape, values.shape[0])
    grid = np.abs(values.astype(np.int64)).reshape(lines, length, len(dims))
    symbols = values.astype(np.int64).reshape(lines, length, len(dims))
    for line in range(lines):
        for dim, model in enumerate(dims):
            if model.num_symbols == 1:
                continue
            contexts = line_contexts(grid, shape, line, dim, model.num_contexts)
            for context in range(model.num_contexts):
                chosen = symbols[line, contexts == context, dim]
                if chosen.size:
                    yield chosen, context_table(model, context, precision)


def encode_level(values: np.ndarray, shape: tuple[int, ...], dims: tuple[DimModel, ...],
                 coder: int, precision: int = DEFAULT_PRECISION) -> bytes:
    """Entropy-code one level ``[rows, D]`` with its context model."""
    for dim, model in enumerate(dims):
        column = values[:, dim]
        if column.size and (column.min() < model.low or column.max() > model.high):
            raise ValueError(f"dimension {dim}: symbols {column.min()}..{column.max()} outside "
                             f"the model's range {model.low}..{model.high}")
    return encode_blocks(_level_blocks(values, shape, dims, precision), coder)


def decode_level(data: bytes, rows: int, shape: tuple[int, ...], dims: tuple[DimModel, ...],
                 coder: int, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Invert :func:`encode_level`: ``[rows, D]`` int32.

    Raises:
        ValueError: the data does not decode to this level with these parameters.
    """
    lines, length = scanlines(shape, rows)
    out = np.zeros((lines, length, len(dims)), dtype=np.int64)
    grid = np.zeros_like(out)
    decoder = BlockDecoder(data, coder)
    for line in range(lines):
        for dim, model in enumerate(dims):
            if model.num_symbols == 1:
                out[line, :, dim] = model.low
            else:
                contexts = line_contexts(grid, shape, line, dim, model.num_contexts)
                for context in range(model.num_contexts):
                    chosen = contexts == context
                    count = int(chosen.sum())
                    if count:
                        table = context_table(model, context, precision)
                        out[line, chosen, dim] = decoder.decode(count, table)
            grid[line, :, dim] = np.abs(out[line, :, dim])
    decoder.finish()
    return out.reshape(rows, len(dims)).astype(np.int32)


def pack_context_model(model: ContextModel) -> bytes:
    """Per level: shape, then per dimension its range and parameters (``docs/bitstream.md``)."""
    out = bytearray()
    for shape, dims in zip(model.shapes, model.dims):
        out += bytes([len(shape)])
        for side in shape:
            out += encode_varint(side)
        for dim in dims:
            out += pack_dim(dim)
    return bytes(out)


def pack_dim(dim: DimModel) -> bytes:
    """One law: its range, then (more than one symbol) tails, context count, centres."""
    out = encode_varint(zigzag(dim.low)) + encode_varint(dim.num_symbols)
    if dim.num_symbols > 1:
        out += bytes([dim.share, dim.ratio_pos, dim.ratio_neg, dim.num_contexts])
        out += np.array(dim.centres, dtype="<u2").tobytes()
    return out


def _read_shape(reader: Reader, rows: int, level: int) -> tuple[int, ...]:
    ndim = reader.u8()
    if ndim > MAX_SHAPE_NDIM:
        raise ValueError(f"level {level}: a shape of {ndim} axes (at most {MAX_SHAPE_NDIM})")
    shape = tuple(reader.varint(limits.MAX_LEVEL_ROWS, f"a side of level {level}")
                  for _ in range(ndim))
    if shape and (min(shape) < 1 or int(np.prod(shape, dtype=object)) != rows):
        raise ValueError(f"level {level}: shape {list(shape)} does not hold its {rows} rows")
    if len(set(shape)) > 1:
        raise ValueError(f"level {level}: shape {list(shape)} is not a cube (a dense level's "
                         "sides are equal)")
    return shape


def read_dim(reader: Reader, precision: int, where: str) -> DimModel:
    """Read what :func:`pack_dim` wrote, checking every parameter."""
    low = unzigzag(reader.varint(1 << 32, f"the smallest symbol of {where}"))
    count = reader.varint(min(limits.MAX_TABLE_SYMBOLS, (1 << precision) - 1),
                          f"the symbol count of {where}")
    if count == 0 or low < -(1 << 31) or low + count - 1 >= 1 << 31:
        raise ValueError(f"{where}: {count} symbols from {low} is not a valid int32 range")
    if count == 1:
        return DimModel(low, low)
    share, ratio_pos, ratio_neg, contexts = reader.take(_PARAM_BYTES)
    if not 1 <= contexts <= MAX_CONTEXTS:
        raise ValueError(f"{where}: {contexts} contexts (expected 1..{MAX_CONTEXTS})")
    centres = np.frombuffer(reader.take(_CENTRE_BYTES * contexts), dtype="<u2")
    model = DimModel(low, low + count - 1, share, ratio_pos, ratio_neg,
                     tuple(int(m) for m in centres))
    try:
        model.check()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return model


def unpack_context_model(reader: Reader, level_rows: list[int], latent_dim: int,
                         precision: int) -> ContextModel:
    """Read what :func:`pack_context_model` wrote (``reader``: the section's bounded reader)."""
    shapes, dims, symbols = [], [], 0
    for level, rows in enumerate(level_rows):
        shapes.append(_read_shape(reader, rows, level))
        dims.append(tuple(read_dim(reader, precision, f"level {level}, dimension {dim}")
                          for dim in range(latent_dim)))
        symbols += sum(d.num_symbols * d.num_contexts for d in dims[-1] if d.num_symbols > 1)
        if symbols > limits.MAX_CONTEXT_TABLE_SYMBOLS:
            raise ValueError(f"the context tables of levels 0..{level} hold {symbols} symbols, "
                             f"above the limit {limits.MAX_CONTEXT_TABLE_SYMBOLS}")
    return ContextModel(tuple(shapes), tuple(dims), precision)
