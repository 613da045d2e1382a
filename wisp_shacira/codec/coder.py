"""Entropy coding of integer latents with constriction's ANS coder.

This is the only module of the package that imports ``constriction``. Each call
codes one block of symbols ``[N, D]`` (one grid level) against one
:class:`~wisp_shacira.entropy.tables.FrequencyTable` per dimension; dimensions
whose table holds a single symbol cost no bits.

Example:
    >>> import numpy as np
    >>> from wisp_shacira.entropy.tables import build_table
    >>> tables = [build_table(np.array([0.2, 0.5, 0.3]), low=-1)]
    >>> symbols = np.array([[0], [1], [-1], [0]], dtype=np.int32)
    >>> data = encode_symbols(symbols, tables)
    >>> bool((decode_symbols(data, 4, tables) == symbols).all())
    True
"""
from __future__ import annotations

import constriction
import numpy as np

from wisp_shacira.entropy.tables import FrequencyTable


def _model(table: FrequencyTable):
    probs = table.freqs.astype(np.float64) / float(table.freqs.sum())
    return constriction.stream.model.Categorical(probs, perfect=False)


def encode_symbols(symbols: np.ndarray, tables: list[FrequencyTable]) -> bytes:
    """Entropy-code a block of integer symbols.

    Args:
        symbols: [N, D] integers; column d must lie in ``tables[d]``'s range.
        tables: D frequency tables.
    Returns:
        The compressed bytes (a whole number of 32-bit words, little-endian).
    Raises:
        ValueError: a symbol outside its table's range, or a shape mismatch.
    """
    symbols = np.asarray(symbols)
    if symbols.ndim != 2 or symbols.shape[1] != len(tables):
        raise ValueError(f"symbols must be [N, {len(tables)}], got {symbols.shape}")
    coder = constriction.stream.stack.AnsCoder()
    for dim in reversed(range(len(tables))):
        table = tables[dim]
        column = symbols[:, dim].astype(np.int64)
        if column.size and (column.min() < table.low or column.max() > table.high):
            raise ValueError(f"dimension {dim}: symbols {column.min()}..{column.max()} outside "
                             f"the table range {table.low}..{table.high}")
        if table.num_symbols == 1 or column.size == 0:
            continue
        coder.encode_reverse((column - table.low).astype(np.int32), _model(table))
    return coder.get_compressed().astype("<u4").tobytes()


def decode_symbols(data: bytes, count: int, tables: list[FrequencyTable]) -> np.ndarray:
    """Invert :func:`encode_symbols`.

    Args:
        data: bytes from :func:`encode_symbols`.
        count: N, the number of rows coded.
        tables: the same D frequency tables.
    Returns:
        [N, D] int32.
    Raises:
        ValueError: the data does not decode to ``count`` rows with these tables.
    """
    if len(data) % 4:
        raise ValueError(f"compressed block of {len(data)} bytes is not a whole number of words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    out = np.empty((count, len(tables)), dtype=np.int32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        for dim, table in enumerate(tables):
            if table.num_symbols == 1 or count == 0:
                out[:, dim] = table.low
                continue
            out[:, dim] = coder.decode(_model(table), count).astype(np.int64) + table.low
    except Exception as exc:  # constriction raises plain exceptions on invalid data
        raise ValueError(f"entropy decoding failed: {exc}") from exc
    if not coder.is_empty():
        raise ValueError("entropy decoding left unread data: tables and block do not match")
    return out
