"""Progressive level-of-detail (LOD) decoding of ``.shac`` files (SHACIRA Sec. 4.5).

A ``.shac`` file holds CONFIG, TABLES and WEIGHTS, then one section per grid level,
coarse to fine. LOD ``l`` (1-based) uses levels ``0..l-1`` with the finer ones
zeroed, so it needs only the first :attr:`LodStream.lod_bytes` ``[l - 1]`` bytes of
the file: a stream can be shown once its headers and first level have arrived and
refined as further levels arrive.

:func:`open_stream` decodes a whole file or a truncated/damaged prefix and says which
levels it holds; :func:`open_source` wraps the decoded model in a renderer
(:class:`ImageSource`, :class:`VideoSource`, :class:`SceneSource`) that renders any
held LOD. Masking the finer levels of a fully decoded model gives exactly what a
decoder of the prefix gives (the finer latents are zero either way and contribute
nothing). :mod:`wisp_shacira.lod_report` measures bytes and quality per LOD.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wisp_shacira.codec.container import read_file_bytes, unpack_sections, write_atomic
from wisp_shacira.codec.model_io import KIND_LEVEL, ShacModel, decode_model
from wisp_shacira.datasets.image import encode_png
from wisp_shacira.datasets.video import save_video
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.tasks import image as image_task
from wisp_shacira.tasks import video as video_task
from wisp_shacira.tasks.common import prepare_decode_output
from wisp_shacira.tasks.nerf_eval import (SceneModel, render_views, scene_field, scene_model_from,
                                          turntable_poses)

TASKS = ("image", "video", "nerf")
TURNTABLE_FRAMES = 60


@dataclass
class LodStream:
    """A decoded (possibly partial) ``.shac`` stream.

    Attributes:
        name: shown in messages (the file path).
        model: the decoded model; ``model.levels`` are the levels the stream holds.
        lod_bytes: ``lod_bytes[l - 1]`` = bytes of the prefix that holds LOD ``l``.
        total_bytes: bytes read (the whole file, or the truncated prefix).
    """

    name: str
    model: ShacModel
    lod_bytes: list[int]
    total_bytes: int

    @property
    def task(self) -> str:
        return str(self.model.config.get("task"))

    @property
    def num_levels(self) -> int:
        """Levels of the full model (L)."""
        return self.model.num_levels

    @property
    def available(self) -> int:
        """Highest LOD this stream can render (levels fully held)."""
        return len(self.model.levels)

    def check_lod(self, lod: int) -> None:
        """Raise :class:`ConfigError` unless ``1 <= lod <= available``."""
        if not 1 <= lod <= self.available:
            held = "" if self.available == self.num_levels else f" ({self.available} held)"
            raise ConfigError(f"{self.name}: LOD {lod} is out of range: the model has LODs "
                              f"1..{self.num_levels}{held}")

    def warning(self) -> str | None:
        """What was missing or damaged, for a stream read in partial mode."""
        if self.model.problem is None:
            return None
        return (f"{self.name}: {self.model.problem}; decoded levels 1..{self.available} "
                f"of {self.num_levels} (LOD {self.available})")


def level_prefix_bytes(data: bytes, name: str = "<bytes>") -> list[int]:
    """Bytes of the shortest prefix of ``data`` holding each intact level section."""
    container = unpack_sections(data, name, partial=True)
    pos = container.header_nbytes
    ends = []
    for section in container.sections:
        pos += section.nbytes
        if section.kind == KIND_LEVEL:
            ends.append(pos)
    return ends


def stream_from_bytes(data: bytes, name: str, max_lod: int | None = None,
                      partial: bool = False) -> LodStream:
    """Decode ``.shac`` bytes (``partial``: a truncated/damaged stream keeps its intact
    levels) up to LOD ``max_lod`` (None = all).

    Raises:
        BitstreamError: not a .shac stream, damaged headers, or (unless ``partial``)
            truncated; also when no level at all is held.
        ConfigError: ``max_lod`` outside ``1..L``.
    """
    if max_lod is not None and max_lod < 1:
        raise ConfigError(f"{name}: --max-lod must be >= 1, got {max_lod}")
    model = decode_model(data, name, max_lod=max_lod, partial=partial)
    if max_lod is not None and max_lod > model.num_levels:
        raise ConfigError(f"{name}: --max-lod {max_lod} is out of range 1..{model.num_levels}")
    if not model.levels:
        raise BitstreamError(f"{name}: no complete latent level to decode ({model.problem})")
    ends = level_prefix_bytes(data, name)[:len(model.levels)]
    return LodStream(name, model, ends, len(data))


def open_stream(path: str | Path, max_lod: int | None = None, partial: bool = False) -> LodStream:
    """Read and decode a ``.shac`` file; see :func:`stream_from_bytes`."""
    return stream_from_bytes(read_file_bytes(path), str(path), max_lod, partial)


def _lod_idx(lod: int, num_levels: int) -> int | None:
    return None if lod >= num_levels else lod - 1


class PlanarSource:
    """Shared part of image and video sources: a field over ``(x, y[, t])``."""

    kind = ""
    height = width = channels = num_frames = num_levels = 0

    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        """Colours at ``coords: [N, 2]`` (x, y) in [0, 1] of ``frame``: [N, C] in [0, 1]."""
        raise NotImplementedError

    def full_frame(self, lod: int, frame: int = 0) -> np.ndarray:
        """Frame ``frame`` at its stored resolution: [H, W, C] float32 in [0, 1]."""
        raise NotImplementedError


class ImageSource(PlanarSource):
    """Renders an image model at any LOD."""

    kind = "image"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.field, meta = image_task.field_from_model(model, name)
        self.height, self.width = meta.height, meta.width
        self.channels, self.bit_depth = meta.channels, meta.bit_depth
        self.num_frames, self.num_levels = 1, model.num_levels

    @torch.no_grad()
    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        return self.field(coords, _lod_idx(lod, self.num_levels)).clamp(0, 1)

    def full_frame(self, lod: int, frame: int = 0) -> np.ndarray:
        """What ``decode_pixels`` gives for LOD ``lod``: [H, W, C] quantised to the bit depth."""
        pixels = image_task.render(self.field, self.height, self.width,
                                   _lod_idx(lod, self.num_levels))
        peak = 2**self.bit_depth - 1
        return (np.round(pixels * peak) / peak).astype(np.float32)


class VideoSource(PlanarSource):
    """Renders a video model at any LOD and frame."""

    kind = "video"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.field, meta = video_task.field_from_model(model, name)
        self.height, self.width, self.channels = meta.height, meta.width, 3
        self.num_frames, self.fps, self.num_levels = meta.num_frames, meta.fps, model.num_levels

    @torch.no_grad()
    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        t = torch.full_like(coords[:, :1], (frame + 0.5) / self.num_frames)
        return self.field(torch.cat([coords, t], 1), _lod_idx(lod, self.num_levels)).clamp(0, 1)

    def frames(self, lod: int) -> np.ndarray:
        """Every frame at LOD ``lod``, as ``decode_frames`` gives them: [T, H, W, 3] uint8."""
        return video_task.render_frames(self.field, self.num_frames, self.height, self.width,
                                        _lod_idx(lod, self.num_levels))

    def full_frame(self, lod: int, frame: int = 0) -> np.ndarray:
        coords = image_task.pixel_coords(self.height, self.width)
        rgb = torch.round(self.colours(coords, lod, frame) * 255) / 255
        return rgb.reshape(self.height, self.width, 3).numpy()


class SceneSource:
    """Renders a radiance-field model at any LOD with the project's tracer.

    The occupancy grid of each LOD is rebuilt from that LOD's density (as a decoder
    of the prefix would) and cached; the grid table is decoded once per render call.
    Renders are serialised by a lock, so viewer threads can share one source.
    """

    kind = "nerf"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.name, self.meta, self.num_levels = name, model.config, model.num_levels
        self.field, cfg = scene_field(model, name)
        self.height, self.width = cfg.scene.height, cfg.scene.width
        self._scenes: dict[int, SceneModel] = {}
        self._lock = threading.Lock()

    def _scene(self, lod: int) -> SceneModel:
        self.field.lod_idx = _lod_idx(lod, self.num_levels)
        if lod not in self._scenes:
            self._scenes[lod] = scene_model_from(self.field, self.meta, self.name)
        return self._scenes[lod]

    @torch.no_grad()
    def render(self, lod: int, c2w: torch.Tensor, intrinsics: torch.Tensor, height: int,
               width: int) -> np.ndarray:
        """Views at LOD ``lod``.

        Args:
            c2w: [V, 4, 4] camera-to-world (box frame, OpenGL axes).
            intrinsics: [V, 4] (fx, fy, cx, cy) in pixels at ``height x width``.
        Returns:
            [V, H, W, 3] uint8.
        """
        with self._lock:
            scene = self._scene(lod)
            with self.field.shared_table():
                return render_views(scene, c2w, intrinsics, height, width)

    def default_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first turntable camera at the training resolution: ([1, 4, 4], [1, 4])."""
        cam = self.meta["camera"]
        intr = torch.tensor([[float(cam[k]) for k in ("fx", "fy", "cx", "cy")]])
        return turntable_poses(cam, 1), intr


def open_source(stream: LodStream) -> ImageSource | VideoSource | SceneSource:
    """The renderer of a decoded stream, by the task its file names."""
    kinds = {"image": ImageSource, "video": VideoSource, "nerf": SceneSource}
    if stream.task not in kinds:
        raise BitstreamError(f"{stream.name}: holds a {stream.task!r} model; LOD decoding "
                             f"supports {', '.join(TASKS)}")
    return kinds[stream.task](stream.model, stream.name)


def turntable(source: SceneSource, lod: int, frames: int = TURNTABLE_FRAMES) -> np.ndarray:
    """A turntable at the training resolution and LOD ``lod``: [F, H, W, 3] uint8."""
    cam = source.meta["camera"]
    intr = torch.tensor([[float(cam[k]) for k in ("fx", "fy", "cx", "cy")]] * frames)
    return source.render(lod, turntable_poses(cam, frames), intr,
                         source.height, source.width)


def decode_partial(path: Path, out: Path, max_lod: int | None = None, *,
                   force: bool = False) -> tuple[Path, LodStream]:
    """``wisp-shacira decode --partial``: decode the levels a possibly truncated or
    damaged file holds and write them as ``decode`` writes a whole file (image: PNG;
    video: video file or frame folder; scene: turntable). ``force`` replaces a
    read-only output; the output path is checked before rendering.

    Returns:
        (the written path, the stream; its :meth:`LodStream.warning` says what was missing).
    """
    stream = open_stream(path, max_lod, partial=True)
    source = open_source(stream)
    lod = stream.available
    out = prepare_decode_output(stream.task, Path(path), Path(out), force)
    if isinstance(source, ImageSource):
        write_atomic(out, encode_png(source.full_frame(lod), source.bit_depth), force=force)
        return out, stream
    if isinstance(source, VideoSource):
        return save_video(source.frames(lod), out, fps=source.fps, force=force), stream
    return save_video(turntable(source, lod), out, fps=24.0, force=force), stream
