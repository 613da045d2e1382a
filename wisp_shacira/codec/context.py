"""Context entropy model of the integer latents (format version 4), integers only.

The decoder rebuilds every probability the coder uses from integers, so a file decodes
bit-identically on any machine. Per level and latent dimension the model is a
two-sided geometric law around a centre symbol, with one centre mass per *context*:

- ``P(centre) = m_c / 2^16`` for context ``c`` (``m_c`` in ``1 .. 2^16 - 1``);
- the rest splits between the sides in ``share : 256 - share`` and decays by
  ``ratio_pos / 256`` (``ratio_neg / 256``) per symbol away from the centre;
- the centre is symbol 0, or the range end nearest to it when 0 is outside the range.

Integer weights (scale ``2^32``) are turned into frequencies summing to ``2^16`` by
integer arithmetic (:func:`context_table`), the same in encoder and decoder.

**Contexts.** A dense level of a grid is an array of ``shape`` (slowest axis first,
the last axis the fastest, i.e. the row-major vertex order of the layout). Its latents
are coded scanline by scanline (one scanline = all vertices along the last axis), and
within a scanline dimension by dimension. The raw context of a latent is the sum of the
magnitudes of already decoded neighbours of the same dimension: in the previous
scanline the vertex above and its two diagonal neighbours, in the previous plane (3-D)
the vertex in front, plus the magnitude of the previous dimension of the same row. The
context index is ``min(raw, C - 1)`` with ``C`` contexts stored per level and dimension.
An unstructured (hashed) level is one scanline; only the previous dimension gives
context there. A scanline's contexts depend on earlier scanlines only, so each
scanline is decoded as a few blocks, one per context, in one vectorised call each.

Neither the coarser levels nor the hashed positions feed the context: measured on
trained Kodak and scene files, coarser-level activity at the vertices hashing to an
entry saved under 1% of a hashed level's bytes (see ``docs/architecture.md``). So a
level decodes from its own section alone and any file prefix decodes the levels it
holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from wisp_shacira.codec.tables import DEFAULT_PRECISION, FrequencyTable

MAX_CONTEXTS = 4
"""Contexts per level and dimension (the raw context is clipped to ``C - 1``)."""
CENTRE_ONE = 1 << 16
"""Centre masses are in units of ``2^-16``."""
SHARE_ONE = 1 << 8
"""Side shares and tail ratios are in units of ``2^-8``."""
MAX_SHAPE_NDIM = 3


@dataclass(frozen=True)
class DimModel:
    """Law of one latent dimension of one level.

    Attributes:
        low, high: the symbol range (inclusive); one symbol codes nothing.
        share: ``1 .. 255``, the positive side's part of the tail mass in 1/256.
        ratio_pos, ratio_neg: ``0 .. 255``, decay per symbol of each tail in 1/256.
        centres: per context, the centre mass in ``1 .. 2^16 - 1`` (units of 2^-16).
    """

    low: int
    high: int
    share: int = SHARE_ONE // 2
    ratio_pos: int = 0
    ratio_neg: int = 0
    centres: tuple[int, ...] = (CENTRE_ONE // 2,)

    @property
    def num_symbols(self) -> int:
        return self.high - self.low + 1

    @property
    def num_contexts(self) -> int:
        return len(self.centres)

    @property
    def centre(self) -> int:
        return min(max(0, self.low), self.high)

    def check(self) -> None:
        """Raise ValueError unless every parameter is in range."""
        if self.high < self.low:
            raise ValueError(f"empty symbol range {self.low}..{self.high}")
        if not (1 <= self.share < SHARE_ONE and 0 <= self.ratio_pos < SHARE_ONE
                and 0 <= self.ratio_neg < SHARE_ONE):
            raise ValueError(f"tail parameters {self.share}, {self.ratio_pos}, {self.ratio_neg} "
                             f"outside 1..255, 0..255, 0..255")
        if not 1 <= len(self.centres) <= MAX_CONTEXTS:
            raise ValueError(f"{len(self.centres)} contexts, expected 1..{MAX_CONTEXTS}")
        if not all(1 <= m < CENTRE_ONE for m in self.centres):
            raise ValueError(f"centre masses {list(self.centres)} outside 1..{CENTRE_ONE - 1}")


@dataclass(frozen=True)
class ContextModel:
    """The context model of a whole file.

    Attributes:
        shapes: per level, the array shape of a dense level (slowest axis first; the
            product is the level's rows), or ``()`` for an unstructured level.
        dims: per level, one :class:`DimModel` per latent dimension.
        precision: the frequency tables sum to ``2^precision``.
    """

    shapes: tuple[tuple[int, ...], ...]
    dims: tuple[tuple[DimModel, ...], ...]
    precision: int = DEFAULT_PRECISION


def _tail(first: int, ratio: int, count: int) -> list[int]:
    """``count`` weights from ``first``, each the previous times ``ratio / 256``, floored."""
    out, weight = [], first
    for _ in range(count):
        out.append(weight)
        weight = (weight * ratio) >> 8
        if weight == 0:
            out.extend([0] * (count - len(out)))
            break
    return out


def geometric_weights(model: DimModel, context: int) -> np.ndarray:
    """Integer weights (scale ``2^32``) of the symbols ``low .. high`` in ``context``."""
    centre, mass = model.centre, model.centres[context]
    rest = CENTRE_ONE - mass
    pos = _tail(rest * model.share * (SHARE_ONE - model.ratio_pos), model.ratio_pos,
                model.high - centre)
    neg = _tail(rest * (SHARE_ONE - model.share) * (SHARE_ONE - model.ratio_neg),
                model.ratio_neg, centre - model.low)
    return np.array(neg[::-1] + [mass << 16] + pos, dtype=np.int64)


def normalise(weights: np.ndarray, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Integer frequencies ``>= 1`` summing to ``2^precision``, proportional to ``weights``.

    Integers only: ``1 + floor(w_i (2^P - K) / W)``, then the remaining units go one
    each to the largest weights (ties: the lower symbol first).
    """
    count, total = len(weights), 1 << precision
    if not 1 <= count < total:
        raise ValueError(f"cannot give {count} symbols a frequency at {precision}-bit precision")
    weights = np.asarray(weights, dtype=np.int64)
    mass = int(weights.sum())
    if mass <= 0:
        weights, mass = np.ones(count, dtype=np.int64), count
    freqs = 1 + (weights * (total - count)) // mass
    deficit = total - int(freqs.sum())
    freqs[np.argsort(-weights, kind="stable")[:deficit]] += 1
    return freqs.astype(np.uint32)


@lru_cache(maxsize=4096)
def context_table(model: DimModel, context: int,
                  precision: int = DEFAULT_PRECISION) -> FrequencyTable:
    """The frequency table that codes ``model``'s symbols in ``context``."""
    if model.num_symbols == 1:
        return FrequencyTable(model.low, np.array([1 << precision], dtype=np.uint32))
    return FrequencyTable(model.low, normalise(geometric_weights(model, context), precision))


def scanlines(shape: tuple[int, ...], rows: int) -> tuple[int, int]:
    """``(number of scanlines, length of one)`` of a level of ``rows`` rows."""
    if not shape:
        return 1, rows
    return rows // shape[-1], shape[-1]


def _neighbours(shape: tuple[int, ...], line: int) -> tuple[int | None, int | None]:
    """Scanlines of the vertex above (previous along axis -2) and in front (axis -3)."""
    if len(shape) < 2:
        return None, None
    above = line - 1 if line % shape[-2] else None
    plane = shape[-2]
    front = line - plane if len(shape) == 3 and line >= plane else None
    return above, front


def line_contexts(grid: np.ndarray, shape: tuple[int, ...], line: int, dim: int,
                  num_contexts: int) -> np.ndarray:
    """Context indices ``0 .. num_contexts - 1`` of one scanline and dimension.

    Args:
        grid: [lines, length, D] int64 magnitudes of the level's latents; only
            scanlines before ``line`` and dimensions before ``dim`` of ``line`` are read.
        shape: the level's shape (``()`` for an unstructured level).
    Returns:
        [length] int64.
    """
    raw = grid[line, :, dim - 1].copy() if dim > 0 else np.zeros(grid.shape[1], np.int64)
    above, front = _neighbours(shape, line)
    if above is not None:
        up = grid[above, :, dim]
        raw += up
        raw[1:] += up[:-1]
        raw[:-1] += up[1:]
    if front is not None:
        raw += grid[front, :, dim]
    return np.minimum(raw, num_contexts - 1)


def level_contexts(values: np.ndarray, shape: tuple[int, ...], dim: int,
                   num_contexts: int) -> np.ndarray:
    """Context indices of every row of one level for dimension ``dim``.

    Args:
        values: [rows, D] integer latents of the level.
    Returns:
        [rows] int64, in row order (the coding order of the scanlines).
    """
    lines, length = scanlines(shape, values.shape[0])
    grid = np.abs(values.astype(np.int64)).reshape(lines, length, values.shape[1])
    return np.concatenate([line_contexts(grid, shape, line, dim, num_contexts)
                           for line in range(lines)]) if lines else np.zeros(0, np.int64)
