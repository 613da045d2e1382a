"""A scene's occupancy grid stored in its file, and the latent rows it makes unread.

By default a scene file stores the occupancy grid rebuilt from the final model (CONFIG
``occupancy.cells``: the cells as bits, x slowest, raw LZMA2, base64). The decoder
then renders with those cells instead of rebuilding them. Every latent row that no
point inside an occupied cell reads
(:func:`~wisp_shacira.grid.occupied_rows.occupied_rows`) is set to zero, and a hashed
level does not code those rows at all (CONFIG ``coded_rows: "occupancy"``; the decoder
computes the same rows from the cells,
:func:`~wisp_shacira.tasks.nerf_eval.scene_row_masks`). The render is the one the
unpruned file gives: the same cells, the same rows read. Files without ``cells``
rebuild the grid as before.
"""
from __future__ import annotations

import base64
import binascii
import copy
import lzma

import numpy as np
import torch

from wisp_shacira.errors import BitstreamError
from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.grid.hashing import GridLayout
from wisp_shacira.grid.occupied_rows import occupied_rows


def _filters(resolution: int) -> list[dict]:
    """The raw LZMA2 filter chain of an ``r^3`` grid's cells: the dictionary just holds
    them (at least LZMA2's 4 KiB), so decoding allocates no more than that."""
    return [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
             "dict_size": max(4096, -(-resolution**3 // 8))}]


def pack_cells(occupied: torch.Tensor) -> str:
    """``[r, r, r]`` bool -> the text of ``occupancy.cells``."""
    bits = np.packbits(occupied.cpu().numpy().reshape(-1)).tobytes()
    packed = lzma.compress(bits, format=lzma.FORMAT_RAW, filters=_filters(occupied.shape[0]))
    return base64.b64encode(packed).decode("ascii")


def unpack_cells(text: object, resolution: int, name: str) -> torch.Tensor:
    """The ``[r, r, r]`` bool cells of ``occupancy.cells``, with ``r = resolution``.

    Raises:
        BitstreamError: not base64, not an LZMA2 stream, or not exactly ``r^3`` bits.
    """
    size = -(-resolution**3 // 8)
    try:
        packed = base64.b64decode(str(text), validate=True)
        inflater = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_filters(resolution))
        bits = inflater.decompress(packed, max_length=size + 1)
        complete = inflater.eof and not inflater.unused_data
    except (binascii.Error, ValueError, lzma.LZMAError) as exc:
        raise BitstreamError(f"{name}: corrupt occupancy cells ({exc})") from exc
    if len(bits) != size or not complete:
        raise BitstreamError(f"{name}: the occupancy cells hold {len(bits)} bytes "
                             f"{'' if complete else 'in an unfinished stream '}where a "
                             f"{resolution}^3 grid needs {size}")
    cells = np.unpackbits(np.frombuffer(bits, np.uint8), count=resolution**3)
    return torch.from_numpy(cells.astype(bool).reshape((resolution,) * 3))


def coded_masks(layout: GridLayout, read: list[torch.Tensor | None]) -> list[np.ndarray | None]:
    """The codec's row masks from the rows read (:func:`occupied_rows`): the hashed levels
    code only their read rows; a dense level codes all of them, its unread ones zero (the
    context coder's spatial contexts make those zeros nearly free, and they are worth more
    to it than the rows left out: trained lego 298,309 bytes this way, about 2,400 more
    with every level masked)."""
    return [None if mask is None or dense else mask.numpy()
            for mask, dense in zip(read, layout.dense)]


@torch.no_grad()
def pruned_field(field: RadianceField, occupied: torch.Tensor
                 ) -> tuple[RadianceField, list[np.ndarray | None], float]:
    """A copy of ``field`` whose latent rows that no point of an occupied cell reads are
    zero, the row masks of its file (:func:`coded_masks`), and the fraction zeroed."""
    pruned = copy.deepcopy(field)
    grid = pruned.grid
    read = occupied_rows(grid.layout, occupied.cpu())
    zeroed = 0
    for level, mask in enumerate(read):
        if mask is not None:
            rows = grid.layout.offsets[level] + (~mask).nonzero().squeeze(1)
            grid.latents[rows.to(grid.latents.device)] = 0.0
            zeroed += len(rows)
    return pruned, coded_masks(grid.layout, read), zeroed / grid.layout.total_rows
