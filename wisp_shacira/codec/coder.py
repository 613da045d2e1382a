"""Entropy coding of integer latents with constriction's ANS coder.

This is the only module of the package that imports ``constriction``. Each call
codes one block of symbols ``[N, D]`` (one grid level) against one
:class:`~wisp_shacira.codec.tables.FrequencyTable` per dimension; dimensions
whose table holds a single symbol cost no bits. Dimensions are pushed in reverse so
the decoder pops dimension 0 first; the payload is the coder's 32-bit words.

Every model is an integer cumulative table at constriction's 24-bit precision
(``cdf[0] = 0 < cdf[1] < ... < cdf[K] = 2^24``), computed here with integers (or,
for the legacy layout, with IEEE-754 double arithmetic in a fixed order), and handed
to constriction so that it uses exactly that table:

- ``CODER_EXACT`` (format version 3): ``cdf`` is the file's frequencies scaled by
  ``2^(24 - P)``; the table in the file *is* the model.
- ``CODER_LEGACY`` (versions 1 and 2): those files were written with
  ``Categorical(freqs / sum, perfect=False)``, whose fixed-point table constriction
  0.4-0.5 computes as ``floor(C_i * (2^24 - K) / sum_j p_j) + i`` with sequential
  double sums ``C_i`` (its ``fast_quantized_cdf``). :func:`legacy_cdf` performs the
  same operations, so old files no longer depend on how a future constriction
  quantises floats.

A table reaches constriction as the float weights ``w_i - 1`` (``w_i = cdf[i+1] -
cdf[i]``): their sum is ``2^24 - K``, so constriction's scale factor is exactly 1.0
and its quantiser returns ``cdf`` unchanged (all values are integers below 2^53).
:func:`verify_coder` proves this on the installed constriction at first use, by
decoding crafted coder states at every boundary of a test table.

Example:
    >>> import numpy as np
    >>> from wisp_shacira.codec.tables import build_table
    >>> tables = [build_table(np.array([0.2, 0.5, 0.3]), low=-1)]
    >>> symbols = np.array([[0], [1], [-1], [0]], dtype=np.int32)
    >>> data = encode_symbols(symbols, tables)
    >>> bool((decode_symbols(data, 4, tables) == symbols).all())
    True
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import constriction
import numpy as np

from wisp_shacira.codec.container import CODER_EXACT, CODER_LEGACY
from wisp_shacira.codec.tables import FrequencyTable

MODEL_PRECISION = 24
"""Bits of constriction's default ANS models (``AnsCoder``: 32-bit words, 64-bit state)."""
MAX_SYMBOLS = (1 << MODEL_PRECISION) - 2
"""constriction's categorical models hold fewer than ``2^24 - 1`` symbols."""


class CoderError(RuntimeError):
    """The installed constriction does not code with the integer tables it is given."""


def table_precision(table: FrequencyTable) -> int:
    """``P`` with ``sum(freqs) == 2^P``; raises ValueError when the sum is no power of two."""
    total = int(table.freqs.astype(np.int64).sum())
    if total <= 0 or total & (total - 1):
        raise ValueError(f"table frequencies sum to {total}, not a power of two")
    return total.bit_length() - 1


def exact_cdf(table: FrequencyTable) -> np.ndarray:
    """Cumulative table of ``CODER_EXACT``: ``[K + 1]`` int64 from 0 to ``2^24``."""
    precision = table_precision(table)
    if precision > MODEL_PRECISION:
        raise ValueError(f"table precision {precision} above the coder's {MODEL_PRECISION} bits")
    weights = table.freqs.astype(np.int64) << (MODEL_PRECISION - precision)
    return np.concatenate([[0], np.cumsum(weights)])


def legacy_cdf(table: FrequencyTable) -> np.ndarray:
    """Cumulative table that versions 1-2 coded with (see the module docstring).

    Reproduces constriction 0.4-0.5's ``Categorical(freqs / freqs.sum(), perfect=False)``
    operation by operation in IEEE-754 doubles (Python floats), in the same order.
    """
    count = table.num_symbols
    total = float(int(table.freqs.astype(np.int64).sum()))
    probs = [float(int(f)) / total for f in table.freqs]
    normalization = 0.0
    for p in probs:
        normalization += p
    scale = float((1 << MODEL_PRECISION) - count) / normalization
    cdf, cumulative = [], 0.0
    for index, p in enumerate(probs):
        cdf.append(int(cumulative * scale) + index)
        cumulative += p
    cdf.append(1 << MODEL_PRECISION)
    return np.array(cdf, dtype=np.int64)


def model_cdf(table: FrequencyTable, coder: int) -> np.ndarray:
    """The integer cumulative table that codes ``table`` under layout ``coder``."""
    if coder == CODER_EXACT:
        return exact_cdf(table)
    if coder == CODER_LEGACY:
        return legacy_cdf(table)
    raise ValueError(f"unknown coder layout {coder}")


def _categorical(cdf: np.ndarray):
    """A constriction model whose fixed-point table is exactly ``cdf``."""
    weights = np.diff(cdf)
    if len(weights) < 2 or len(weights) > MAX_SYMBOLS or np.any(weights < 1):
        raise ValueError(f"invalid cumulative table of {len(weights)} symbols")
    return constriction.stream.model.Categorical((weights - 1).astype(np.float64), perfect=False)


def _probe(model, quantile: int) -> int:
    """Symbol that ``model`` decodes from a coder state whose low 24 bits are ``quantile``."""
    state = (1 << 40) | quantile
    words = np.array([state & 0xFFFFFFFF, state >> 32], dtype=np.uint32)
    return int(constriction.stream.stack.AnsCoder(words).decode(model))


def cdf_boundaries_hold(cdf: np.ndarray) -> bool:
    """Whether constriction decodes ``cdf[i] - 1`` as symbol ``i - 1`` and ``cdf[i]`` as
    ``i`` for every inner boundary: the model it built is exactly ``cdf``."""
    model = _categorical(cdf)
    checks = [(0, 0), (int(cdf[-1]) - 1, len(cdf) - 2)]
    for i in range(1, len(cdf) - 1):
        checks += [(int(cdf[i]) - 1, i - 1), (int(cdf[i]), i)]
    return all(_probe(model, quantile) == symbol for quantile, symbol in checks)


@lru_cache(maxsize=1)
def verify_coder() -> None:
    """Check once per process that the installed constriction codes integer tables exactly.

    Raises:
        CoderError: it does not (a constriction release changed its quantiser); files
            could then be miscoded, so nothing is coded.
    """
    freqs = np.array([1, 2, 1, 4075, 3, 1, 5, 7, 1], dtype=np.uint32) << 4
    table = FrequencyTable(-3, freqs)
    for coder in (CODER_EXACT, CODER_LEGACY):
        if not cdf_boundaries_hold(model_cdf(table, coder)):
            raise CoderError("the installed constriction does not reproduce integer frequency "
                             "tables exactly; install a tested release (constriction>=0.5,<0.6)")


def encode_blocks(blocks: Iterable[tuple[np.ndarray, FrequencyTable]],
                  coder: int = CODER_EXACT, label: str = "block") -> bytes:
    """Entropy-code blocks of symbols, each against its own table, so that
    :class:`BlockDecoder` returns them in the same order.

    Args:
        blocks: ``(symbols [n] integers in the table's range, table)`` in decoding order;
            one-symbol tables and empty blocks cost nothing.
        coder: the layout (``CODER_EXACT`` for new files).
        label: what a block is, for the error message (``"dimension"``: ``dimension 2: ...``).
    Returns:
        The compressed bytes (a whole number of 32-bit words, little-endian).
    Raises:
        ValueError: a symbol outside its table's range.
    """
    verify_coder()
    pending = []
    for index, (symbols, table) in enumerate(blocks):
        column = np.asarray(symbols).astype(np.int64).ravel()
        if column.size and (column.min() < table.low or column.max() > table.high):
            raise ValueError(f"{label} {index}: symbols {column.min()}..{column.max()} outside "
                             f"the table range {table.low}..{table.high}")
        if table.num_symbols > 1 and column.size:
            pending.append(((column - table.low).astype(np.int32), table))
    stack = constriction.stream.stack.AnsCoder()
    models: dict[int, tuple[FrequencyTable, object]] = {}
    for column, table in reversed(pending):
        stack.encode_reverse(column, _cached_model(models, table, coder))
    return stack.get_compressed().astype("<u4").tobytes()


def _cached_model(models: dict, table: FrequencyTable, coder: int):
    """The constriction model of ``table``, built once per coding call (the dict keeps the
    table alive, so its id is not reused)."""
    entry = models.get(id(table))
    if entry is None:
        entry = models[id(table)] = (table, _categorical(model_cdf(table, coder)))
    return entry[1]


class BlockDecoder:
    """Pops the blocks that :func:`encode_blocks` wrote, in order.

    Raises (each method): ValueError when the data does not decode with these tables.
    """

    def __init__(self, data: bytes, coder: int = CODER_EXACT) -> None:
        verify_coder()
        if len(data) % 4:
            raise ValueError(f"compressed block of {len(data)} bytes is not a whole number "
                             "of words")
        self.coder = coder
        self._models: dict[int, tuple[FrequencyTable, object]] = {}
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            self._stack = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction raises plain exceptions on invalid data
            raise ValueError(f"entropy decoding failed: {exc}") from exc

    def decode(self, count: int, table: FrequencyTable) -> np.ndarray:
        """The next ``count`` symbols, coded against ``table``: [count] int64."""
        if table.num_symbols == 1 or count == 0:
            return np.full(count, table.low, dtype=np.int64)
        try:
            values = self._stack.decode(_cached_model(self._models, table, self.coder), count)
        except Exception as exc:  # constriction raises plain exceptions on invalid data
            raise ValueError(f"entropy decoding failed: {exc}") from exc
        return values.astype(np.int64) + table.low

    def finish(self) -> None:
        """Check that every word was read."""
        if not self._stack.is_empty():
            raise ValueError("entropy decoding left unread data: tables and block do not match")


def encode_symbols(symbols: np.ndarray, tables: list[FrequencyTable],
                   coder: int = CODER_EXACT) -> bytes:
    """Entropy-code a block of integer symbols, dimension 0 decoded first.

    Args:
        symbols: [N, D] integers; column d must lie in ``tables[d]``'s range.
        tables: D frequency tables.
        coder: the layout (``CODER_EXACT`` for new files).
    Returns:
        The compressed bytes (a whole number of 32-bit words, little-endian).
    Raises:
        ValueError: a symbol outside its table's range, or a shape mismatch.
    """
    symbols = np.asarray(symbols)
    if symbols.ndim != 2 or symbols.shape[1] != len(tables):
        raise ValueError(f"symbols must be [N, {len(tables)}], got {symbols.shape}")
    return encode_blocks(((symbols[:, dim], table) for dim, table in enumerate(tables)), coder,
                         label="dimension")


def decode_symbols(data: bytes, count: int, tables: list[FrequencyTable],
                   coder: int = CODER_EXACT) -> np.ndarray:
    """Invert :func:`encode_symbols`.

    Args:
        data: bytes from :func:`encode_symbols`.
        count: N, the number of rows coded.
        tables: the same D frequency tables.
        coder: the layout the block was written with.
    Returns:
        [N, D] int32.
    Raises:
        ValueError: the data does not decode to ``count`` rows with these tables.
    """
    coded = count > 0 and any(t.num_symbols > 1 for t in tables)
    if data and not coded:
        raise ValueError(f"{len(data)} bytes of data for a block that codes no symbols")
    decoder = BlockDecoder(data, coder)
    out = np.empty((count, len(tables)), dtype=np.int32)
    for dim, table in enumerate(tables):
        out[:, dim] = decoder.decode(count, table)
    decoder.finish()
    return out
