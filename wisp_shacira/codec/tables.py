"""Integer frequency tables: what the bitstream stores instead of the density network.

Part of the codec (numpy only): the TABLES section stores these tables and
:mod:`wisp_shacira.codec.coder` codes the level sections against them. The coder
needs, per latent dimension, the integer range it covers and one integer frequency
per symbol. Frequencies sum to ``2^precision`` and are at least 1, so every symbol
of the range can be coded; encoder and decoder build the same model from these
integers, so decoding is exact on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_PRECISION = 16


@dataclass(frozen=True)
class FrequencyTable:
    """Integer model of one latent dimension.

    Attributes:
        low: smallest symbol.
        freqs: [K] uint32 frequencies of symbols ``low .. low + K - 1``; sum is
            ``2^precision`` (or a single entry for a one-symbol dimension).
    """

    low: int
    freqs: np.ndarray

    @property
    def high(self) -> int:
        return self.low + len(self.freqs) - 1

    @property
    def num_symbols(self) -> int:
        return len(self.freqs)


def quantize_pmf(pmf: np.ndarray, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Turn probabilities into integer frequencies >= 1 that sum to ``2^precision``.

    Args:
        pmf: [K] nonnegative floats (need not be normalised), K <= 2^precision.
    Returns:
        [K] uint32.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    total = 1 << precision
    count = pmf.shape[0]
    if count == 0 or count > total:
        raise ValueError(f"cannot quantise {count} symbols at {precision}-bit precision")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise ValueError("probabilities must be finite and nonnegative")
    mass = pmf.sum()
    pmf = pmf / mass if mass > 0 else np.full(count, 1.0 / count)
    freqs = np.floor(pmf * (total - count)).astype(np.int64) + 1
    deficit = total - int(freqs.sum())
    # each floor loses less than one unit, so 0 <= deficit < count
    freqs[np.argsort(-pmf, kind="stable")[:deficit]] += 1
    return freqs.astype(np.uint32)


def build_table(pmf: np.ndarray, low: int, precision: int = DEFAULT_PRECISION) -> FrequencyTable:
    """Frequency table for symbols ``low .. low + len(pmf) - 1``."""
    if len(pmf) == 1:
        return FrequencyTable(low, np.array([1 << precision], dtype=np.uint32))
    return FrequencyTable(low, quantize_pmf(pmf, precision))


def histogram_table(symbols: np.ndarray, precision: int = DEFAULT_PRECISION) -> FrequencyTable:
    """Table of the empirical distribution of integer ``symbols: [N]`` over their range.

    An empty array gives the one-symbol table of 0 (it codes nothing).
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size == 0:
        return build_table(np.ones(1), 0, precision)
    low = int(symbols.min())
    return build_table(np.bincount(symbols - low).astype(np.float64), low, precision)
