"""Bounds that a ``.shac`` decoder enforces before it allocates or computes anything large.

A file is untrusted input: every size it declares is checked against these bounds,
and the memory a decode needs is estimated from the header and refused (naming the
amount) when it exceeds the limit. The memory limit defaults to
:data:`DEFAULT_MAX_MEMORY`; the environment variable ``WISP_SHACIRA_MAX_MEMORY``
(bytes, or a size such as ``512M``, ``16G``, ``1.5GiB``) or the CLI's
``--max-memory`` changes it. ``docs/bitstream.md`` lists the bounds.
"""
from __future__ import annotations

import math
import os
import re

from wisp_shacira.errors import BitstreamError, ConfigError

MAX_LEVELS = 64
MAX_LATENT_DIM = 64
MAX_FEATURE_DIM = 64
MAX_LEVEL_ROWS = 1 << 30
MAX_TABLE_SYMBOLS = 1 << 20
MAX_CONTEXT_TABLE_SYMBOLS = 1 << 22
"""Symbols over all tables a context model implies (sum of K x C): bounds the decoder's
table building, which the few bytes of a context section could otherwise make huge."""
MAX_WEIGHTS = 1024
MAX_WEIGHT_NAME = 256
MAX_WEIGHT_NDIM = 4
MAX_WEIGHT_VALUES = 1 << 24
"""Values of all entropy-coded (int32) weights of a file, and of one weight's side."""
MAX_WEIGHT_LIST_BYTES = 1 << 26
"""Decompressed size of a version-5 weight list (names, shapes, raw float values)."""
MAX_WEIGHT_LAW_SYMBOLS = 1 << 20
"""Symbols over the laws of all coded weights (bounds the decoder's table building)."""
MAX_CONFIG_BYTES = 1 << 20
"""Decompressed size of the CONFIG section (JSON)."""
MAX_MLP_LAYERS = 64
MAX_MLP_WIDTH = 4096
MAX_IMAGE_SIDE = 1 << 20
MAX_FRAMES = 1 << 20
MAX_OCCUPANCY_RESOLUTION = 1024
MAX_OCCUPANCY_SUBSAMPLES = 16
MAX_OCCUPANCY_POINTS = 1 << 30
"""Density evaluations of rebuilding the occupancy grid: resolution^3 * subsamples^3."""
MAX_TRACER_SAMPLES = 4096
MAX_TRACER_CHUNK = 1 << 22
MAX_TRACER_SEGMENTS = 64

DEFAULT_MAX_MEMORY = 4 << 30
ENV_MAX_MEMORY = "WISP_SHACIRA_MAX_MEMORY"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 10**3, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30, "t": 1 << 40,
          "tb": 10**12, "tib": 1 << 40}


def parse_size(text: str, what: str = "size") -> int:
    """Bytes of ``text``: ``1048576``, ``512M``, ``16G``, ``1.5GiB`` (K/M/G/T are powers of 2).

    Raises:
        ConfigError: not a positive size.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ConfigError(f"{what}: {text!r} is not a size (examples: 1073741824, 512M, 16G)")
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"{what}: {text!r} must be at least 1 byte")
    return int(value)


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} PiB"


def max_memory() -> int:
    """The decode memory limit in bytes (``$WISP_SHACIRA_MAX_MEMORY``, else the default)."""
    raw = os.environ.get(ENV_MAX_MEMORY, "").strip()
    return parse_size(raw, ENV_MAX_MEMORY) if raw else DEFAULT_MAX_MEMORY


def check_memory(need: float, what: str, name: str) -> None:
    """Refuse a decode that needs more than the limit, before allocating it.

    Args:
        need: estimated bytes.
        what: what needs them (shown to the user).
        name: the file, for the message.
    Raises:
        BitstreamError: ``need`` exceeds :func:`max_memory`.
    """
    limit = max_memory()
    if need > limit:
        raise BitstreamError(f"{name}: decoding needs about {format_bytes(need)} for {what}, "
                             f"above the limit of {format_bytes(limit)} (raise it with "
                             f"--max-memory or {ENV_MAX_MEMORY})")


def require_in(value: object, low: float, high: float, what: str, name: str) -> None:
    """Raise a :class:`BitstreamError` unless ``value`` is a finite number in ``[low, high]``."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and low <= value <= high)
    if not ok:
        raise BitstreamError(f"{name}: {what} = {value!r} is outside {low:g}..{high:g}")
