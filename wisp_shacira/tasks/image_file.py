"""What an image ``.shac`` file records, and the field rebuilt from it.

Shared by the in-memory image path (:mod:`wisp_shacira.tasks.image`) and the
out-of-core path (:mod:`wisp_shacira.tasks.image_large`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wisp_shacira.codec.limits import MAX_IMAGE_SIDE
from wisp_shacira.codec.model_io import ShacModel, read_shac
from wisp_shacira.config import require
from wisp_shacira.errors import BitstreamError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.tasks.decoding import EVAL_CHUNK, build_field, eval_bytes, parse_file_config


def file_config(cfg: Any, image: Any) -> dict:
    """What the ``.shac`` CONFIG section records for an image (``cfg``: the image task's
    ``AppConfig``; ``image``: anything with ``name``, ``height``, ``width``,
    ``channels``, ``bit_depth``)."""
    return {"task": "image", "grid": dataclasses.asdict(cfg.grid), "nef": dataclasses.asdict(cfg.nef),
            "image": {"name": image.name, "height": image.height, "width": image.width,
                      "channels": image.channels, "bit_depth": image.bit_depth}}


@dataclass
class ImageMeta:
    """The ``image`` section of an image file's CONFIG."""

    name: str
    height: int
    width: int
    channels: int
    bit_depth: int

    def check(self) -> None:
        require(1 <= self.height <= MAX_IMAGE_SIDE and 1 <= self.width <= MAX_IMAGE_SIDE,
                f"image size {self.width}x{self.height} outside 1..{MAX_IMAGE_SIDE}")
        require(1 <= self.channels <= 4, f"image.channels must be 1..4, got {self.channels}")
        require(self.bit_depth in (8, 16), f"image.bit_depth must be 8 or 16, got {self.bit_depth}")


@dataclass
class ImageFileConfig:
    """The CONFIG section of an image ``.shac`` file (see :func:`file_config`)."""

    task: Literal["image"]
    grid: GridConfig
    nef: ImageNefConfig
    image: ImageMeta


def render_bytes(field_: ImageField, meta: ImageMeta, pixels: int | None = None) -> float:
    """Memory of rendering ``pixels`` at once (None = the whole image) plus quantisation
    and PNG encoding, and the decoded feature table (an upper estimate)."""
    pixels = meta.height * meta.width if pixels is None else pixels
    table = field_.grid.layout.total_rows * field_.grid.config.feature_dim * 4
    return pixels * (24 + 24 * meta.channels) + eval_bytes(field_, EVAL_CHUNK) + table


def field_from_model(model: ShacModel, name: str, pixels: int | None = None
                     ) -> tuple[ImageField, ImageMeta]:
    """Rebuild an image field and its metadata from a decoded ``.shac`` model, after
    checking the file's configuration, weights and the memory of rendering ``pixels``
    at once (None = a full decode)."""
    cfg = parse_file_config(ImageFileConfig, model, name)
    field_ = build_field(lambda: ImageField(cfg.grid, cfg.nef, cfg.image.channels), model, name,
                         lambda probe: render_bytes(probe, cfg.image, pixels),
                         f"a {cfg.image.width}x{cfg.image.height}x{cfg.image.channels} image")
    return field_, cfg.image


def decode_field(path: Path, max_lod: int | None = None, partial: bool = False,
                 pixels: int | None = None) -> tuple[ImageField, ImageMeta, ShacModel]:
    """Read an image file and rebuild its field (``pixels``: see :func:`field_from_model`).

    Raises:
        BitstreamError: no complete level to decode.
    """
    model = read_shac(path, max_lod=max_lod, partial=partial)
    if len(model.levels) == 0:
        raise BitstreamError(f"{path}: no complete latent level to decode "
                             f"({model.problem or 'none requested'})")
    field_, meta = field_from_model(model, str(path), pixels)
    return field_, meta, model
