"""Bytes and quality per level of detail of a ``.shac`` file (``wisp-shacira lod``).

Each LOD ``l`` is decoded from exactly the first ``lod_bytes[l - 1]`` bytes of the file
(the prefix a stream would have delivered), rendered, and compared with a reference:
the original image or video, the views of a poses file that have images (a scene's
held-out views), or, when none is given, the render of the highest LOD held ("vs
full"). PSNR is the mean over frames/views of the per-frame PSNR, on values in [0, 1].
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from wisp_shacira.codec.container import read_file_bytes
from wisp_shacira.errors import DataError
from wisp_shacira.extras import require
from wisp_shacira.lod import stream_from_bytes, stream_task
from wisp_shacira.metrics import psnr
from wisp_shacira.outputs import write_atomic
from wisp_shacira.tasks.common import timed


@dataclass
class LodRow:
    """One LOD: bytes of the prefix that holds it, PSNR, decode + render seconds."""

    lod: int
    bytes: int
    psnr: float
    seconds: float


@dataclass
class LodReport:
    """Result of :func:`analyse`.

    Attributes:
        reference: what the PSNR is measured against.
        warning: what was missing, for a truncated or damaged file.
        previews: one ``[H, W, 3] uint8`` render per LOD (the strip).
    """

    file: str
    task: str
    num_levels: int
    total_bytes: int
    reference: str
    rows: list[LodRow]
    warning: str | None = None
    previews: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """JSON-ready summary (an infinite PSNR, identical to the reference, is null)."""
        lods = [{"lod": r.lod, "bytes": r.bytes, "fraction": r.bytes / self.total_bytes,
                 "psnr": r.psnr if math.isfinite(r.psnr) else None, "seconds": r.seconds}
                for r in self.rows]
        return {"file": self.file, "task": self.task, "num_levels": self.num_levels,
                "levels_held": len(self.rows), "total_bytes": self.total_bytes,
                "reference": self.reference, "warning": self.warning, "lods": lods}


def _unit(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float64) / 255.0 if array.dtype == np.uint8 else array


def mean_psnr(renders: np.ndarray, reference: np.ndarray) -> float:
    """Mean over the first axis of the PSNR of ``[V, H, W, C]`` arrays (uint8 or [0, 1])."""
    if renders.shape != reference.shape:
        raise DataError(f"reference of shape {reference.shape} does not match the "
                        f"renders' {renders.shape}")
    return float(np.mean([psnr(_unit(a), _unit(b)) for a, b in zip(renders, reference)]))


def _rgb8(view: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` (uint8 or [0, 1]; 1 to 4 channels) -> ``[H, W, 3]`` uint8 for display."""
    unit = _unit(view)
    rgb = unit[..., :1].repeat(3, -1) if unit.shape[-1] < 3 else unit[..., :3]
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


@torch.no_grad()
def analyse(path: str | Path, reference: Path | None = None, poses: Path | None = None,
            max_views: int | None = None) -> LodReport:
    """Bytes and PSNR of every LOD the file holds (a truncated file: the levels it holds).

    Args:
        reference: the original image or video (image/video files).
        poses: a transforms JSON whose views (with images) are measured (scenes).
        max_views: measure at most this many views of ``poses``.
    """
    data = read_file_bytes(path)
    stream = stream_from_bytes(data, str(path), partial=True)
    target = stream_task(stream).lod_target(stream.model, stream.name, reference, poses,
                                            max_views)
    rows, renders = [], []
    for lod, nbytes in enumerate(stream.lod_bytes, start=1):
        with timed() as seconds:
            prefix = stream_from_bytes(data[:nbytes], str(path), partial=True)
            renders.append(target.render(prefix.model, prefix.available))
        rows.append(LodRow(lod, nbytes, math.nan, seconds[0]))
    reference_views = target.reference if target.reference is not None else renders[-1]
    for row, views in zip(rows, renders):
        row.psnr = mean_psnr(views, reference_views)
    return LodReport(str(path), stream.task, stream.num_levels, len(data), target.label, rows,
                     stream.warning(), [_rgb8(views[target.preview]) for views in renders])


def save_plot(report: LodReport, path: Path, force: bool = False) -> None:
    """Bytes-vs-PSNR curve of the LODs as a PNG (``force``: replace a read-only file)."""
    matplotlib = require("matplotlib", "plots", f"the plot {path.name}")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if math.isfinite(r.psnr)]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot([r.bytes / 1024 for r in rows], [r.psnr for r in rows], "o-")
    for r in rows:
        ax.annotate(str(r.lod), (r.bytes / 1024, r.psnr), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set_xlabel("bytes needed (KiB)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{Path(report.file).name}: PSNR vs {report.reference}", fontsize=8)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue(), force=force)


def save_strip(report: LodReport, path: Path, tile_height: int = 160, columns: int = 8,
               force: bool = False) -> None:
    """One labelled render per LOD, ``columns`` per row, as a PNG (``force``: replace a
    read-only file); each render is scaled to fit ``tile_height`` high and four times
    that wide (a panorama of 65536 x 12 pixels gets a 640 x 1 tile, not 873,813 x 160)."""
    first = report.previews[0]
    scale = min(tile_height / first.shape[0], 4 * tile_height / first.shape[1])
    tile_w = max(1, round(first.shape[1] * scale))
    tile_h = max(1, round(first.shape[0] * scale))
    label_h, pad = 34, 4
    rows = -(-len(report.previews) // columns)
    cols = min(columns, len(report.previews))
    sheet = Image.new("RGB", (cols * (tile_w + pad) + pad, rows * (tile_h + label_h + pad) + pad),
                      (255, 255, 255))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    resample = Image.NEAREST if first.shape[0] < tile_h else Image.LANCZOS
    for k, (row, view) in enumerate(zip(report.rows, report.previews)):
        x = pad + (k % columns) * (tile_w + pad)
        y = pad + (k // columns) * (tile_h + label_h + pad)
        sheet.paste(Image.fromarray(view).resize((tile_w, tile_h), resample), (x, y))
        quality = f"{row.psnr:.2f} dB" if math.isfinite(row.psnr) else "= reference"
        draw.text((x, y + tile_h + 2), f"LOD {row.lod}: {row.bytes} B\n{quality}",
                  fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue(), force=force)
