"""Video input/output and pixel sampling for the video task.

A video is either a file that FFmpeg can read (MP4, MKV, MOV, ... through PyAV) or a
folder of frame images (PNG/JPEG, sorted in natural order: ``f2.png`` before
``f10.png``). Frames are always held as ``uint8`` so that long clips stay small;
conversion to float happens per batch in the trainer. Video files need PyAV (the
extra ``video``, imported at use); folders of frames need only Pillow.
"""
from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from wisp_shacira.errors import ConfigError, DataError, MissingExtraError, OutputError
from wisp_shacira.extras import require
from wisp_shacira.outputs import staged_output

logger = logging.getLogger(__name__)
_mp4_warned = False

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi")
NOT_FOLDER_SUFFIXES = (".gif", ".webp", ".bmp", ".tif", ".tiff", ".exr", ".shac", ".json",
                       ".pt")
"""Suffixes of files that a video output (a video file or a folder of frames) cannot be."""
FOLDER_FPS = 25.0
"""Frame rate reported for folders of frames, which carry no timing."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`load_video` read: the source and the frames it kept.

    ``num_frames`` counts the frames in the source; ``height``/``width`` are the size
    after downscaling; ``frame_indices`` are the source indices of the kept frames.
    """

    path: Path
    fps: float
    num_frames: int
    height: int
    width: int
    frame_indices: tuple[int, ...]


def load_video(
    path: str | os.PathLike[str],
    frame_start: int = 0,
    frame_end: int | None = None,
    stride: int = 1,
    downscale: int = 1,
) -> np.ndarray:
    """Load frames ``frame_start, frame_start+stride, ... < frame_end`` of a video.

    Returns ``frames: [T, H // downscale, W // downscale, 3] uint8``. See
    :func:`load_video_with_info` for the arguments and errors.
    """
    frames, _ = load_video_with_info(path, frame_start, frame_end, stride, downscale)
    return frames


def load_video_with_info(
    path: str | os.PathLike[str],
    frame_start: int = 0,
    frame_end: int | None = None,
    stride: int = 1,
    downscale: int = 1,
) -> tuple[np.ndarray, VideoInfo]:
    """Load a range of frames and describe them.

    Args:
        path: a video file, or a folder of PNG/JPEG frames.
        frame_start: first source frame (inclusive, 0-based).
        frame_end: end of the range (exclusive); ``None`` means the last frame.
        stride: keep every ``stride``-th frame of the range.
        downscale: integer factor; each output pixel is the mean of a
            ``downscale x downscale`` block (rows/columns past a multiple are dropped).

    Returns:
        ``frames: [T, H, W, 3] uint8`` and its :class:`VideoInfo`.

    Raises:
        ConfigError: a negative start, an empty range, ``stride`` or ``downscale`` < 1.
        DataError: missing or unreadable input, empty video, a range past the last
            frame, frames of different sizes, or frames smaller than ``downscale``.
    """
    _check_range_args(frame_start, frame_end, stride, downscale)
    source = Path(path)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir():
        return _load_folder(source, frame_start, frame_end, stride, downscale)
    return _load_file(source, frame_start, frame_end, stride, downscale)


def _check_range_args(frame_start: int, frame_end: int | None, stride: int, downscale: int) -> None:
    if frame_start < 0:
        raise ConfigError(f"frame_start must be >= 0, got {frame_start}")
    if frame_end is not None and frame_end <= frame_start:
        raise ConfigError(
            f"frame_end ({frame_end}) must be greater than frame_start ({frame_start})"
        )
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    if downscale < 1:
        raise ConfigError(f"downscale must be >= 1, got {downscale}")


def _check_range_in(source: Path, num_frames: int, frame_start: int, frame_end: int | None) -> None:
    if frame_start >= num_frames or (frame_end is not None and frame_end > num_frames):
        end = "end" if frame_end is None else str(frame_end)
        raise DataError(
            f"{source}: frame range [{frame_start}, {end}) is past the end; "
            f"it has {num_frames} frames"
        )


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _list_frames(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise DataError(f"{folder}: folder has no PNG or JPEG frames")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _load_folder(
    folder: Path, frame_start: int, frame_end: int | None, stride: int, downscale: int
) -> tuple[np.ndarray, VideoInfo]:
    files = _list_frames(folder)
    _check_range_in(folder, len(files), frame_start, frame_end)
    first_size = _image_size(files[0])
    for file in files[1:]:
        size = _image_size(file)
        if size != first_size:
            raise DataError(
                f"{file}: frame size {size[0]}x{size[1]} differs from {files[0].name} "
                f"({first_size[0]}x{first_size[1]})"
            )
    indices = tuple(range(frame_start, frame_end or len(files), stride))
    warned = [False]
    frames = [_downscale(_read_image(files[i], warned), downscale, files[i]) for i in indices]
    stacked = np.stack(frames)
    info = VideoInfo(folder, FOLDER_FPS, len(files), stacked.shape[1], stacked.shape[2], indices)
    return stacked, info


def _image_size(file: Path) -> tuple[int, int]:
    try:
        with Image.open(file) as img:
            return img.size
    except (OSError, ValueError) as err:
        raise DataError(f"{file}: not a readable image ({err})") from err


def _read_image(file: Path, warned: list[bool]) -> np.ndarray:
    """Read one frame as ``[H, W, 3] uint8`` (gray → RGB, alpha dropped with a warning)."""
    try:
        with Image.open(file) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(img, dtype=np.float64)
                gray = np.clip(np.round(gray / 257.0), 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            if has_alpha and not warned[0]:
                warnings.warn(f"{file}: dropping the alpha channel of RGBA frames", stacklevel=4)
                warned[0] = True
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise DataError(f"{file}: not a readable image ({err})") from err


def _downscale(frame: np.ndarray, factor: int, source: Path) -> np.ndarray:
    """Area-average ``frame: [H, W, 3] uint8`` to ``[H // factor, W // factor, 3] uint8``."""
    if factor == 1:
        return frame
    height, width = frame.shape[0] // factor, frame.shape[1] // factor
    if height == 0 or width == 0:
        raise DataError(
            f"{source}: frame {frame.shape[1]}x{frame.shape[0]} is smaller than downscale {factor}"
        )
    blocks = frame[: height * factor, : width * factor].reshape(height, factor, width, factor, 3)
    total = blocks.sum(axis=(1, 3), dtype=np.uint32)
    area = factor * factor
    return ((total + area // 2) // area).astype(np.uint8)


def _load_file(
    file: Path, frame_start: int, frame_end: int | None, stride: int, downscale: int
) -> tuple[np.ndarray, VideoInfo]:
    """Decode frames from ``frame_start`` up to ``frame_end``, then stop."""
    frames: list[np.ndarray] = []
    indices: list[int] = []
    count = 0
    av = require("av", "video", f"reading the video file {file}")
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise DataError(f"{file}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or stream.guessed_rate or FOLDER_FPS)
            alpha_warned = False
            for frame in container.decode(stream):
                if frame_end is not None and count >= frame_end:
                    break
                if count >= frame_start and (count - frame_start) % stride == 0:
                    if not alpha_warned and any(c.is_alpha for c in frame.format.components):
                        warnings.warn(f"{file}: dropping the video's alpha channel", stacklevel=3)
                        alpha_warned = True
                    rgb = frame.to_ndarray(format="rgb24")
                    frames.append(_downscale(rgb, downscale, file))
                    indices.append(count)
                count += 1
    except av.FFmpegError as err:
        raise DataError(f"{file}: not a readable video ({err})") from err
    if count == 0:
        raise DataError(f"{file}: video has no frames")
    if frame_end is None or count < frame_end:
        _check_range_in(file, count, frame_start, frame_end)
    stacked = np.stack(frames)
    info = VideoInfo(file, fps, count, stacked.shape[1], stacked.shape[2], tuple(indices))
    return stacked, info


def check_video_output(path: str | os.PathLike[str]) -> Path:
    """Validate a video output path before any rendering; return it as a ``Path``.

    A path ending in a video extension (.mp4, .mkv, .mov, .avi) is a video file; any
    other path names a folder of frames, except an image or other file suffix
    (``.png``, ``.shac``, ...) and an existing file that is not a video, both refused.

    Raises:
        OutputError: the path cannot be a video output.
        MissingExtraError: a video file without PyAV (extra ``video``).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    allowed = ", ".join(VIDEO_EXTENSIONS)
    if suffix in IMAGE_EXTENSIONS + NOT_FOLDER_SUFFIXES:
        raise OutputError(f"{target}: a video output must end in {allowed} or name a folder")
    if suffix in VIDEO_EXTENSIONS:
        require("av", "video", f"writing the video file {target}")
    elif target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is an existing file; a video output must end in "
                          f"{allowed} or name a folder")
    return target


def decoded_clip_path(folder: Path, name: str) -> Path:
    """Where a run writes the decoded clip ``name``: ``folder/NAME.mp4``, or, without
    PyAV (extra ``video``), the folder of frames ``folder/NAME_frames`` (warned once)."""
    global _mp4_warned
    try:
        require("av", "video", "writing the decoded clip as MP4")
    except MissingExtraError as exc:
        if not _mp4_warned:
            _mp4_warned = True
            logger.warning("%s; writing a folder of PNG frames instead", exc)
        return Path(folder) / f"{name}_frames"
    return Path(folder) / f"{name}.mp4"


def save_video(
    frames: np.ndarray,
    path: str | os.PathLike[str],
    fps: float = FOLDER_FPS,
    crf: int = 0,
    pix_fmt: str = "yuv444p",
    force: bool = False,
) -> Path:
    """Write ``frames: [T, H, W, 3] uint8`` atomically; return the written path.

    A path ending in a video extension (.mp4, .mkv, .mov, .avi) is encoded with H.264
    (libx264, ``crf`` 0 and ``yuv444p`` by default: near-lossless, ~50 dB, so the file
    shows our reconstruction faithfully; ``pix_fmt="yuv420p"`` plays everywhere but
    needs even sizes). Any other path becomes a folder of ``frame_00000.png``, ...
    (see :func:`check_video_output`). The output is built next to ``path`` and moved
    into place with the permissions of every output (:mod:`wisp_shacira.outputs`); an
    existing read-only output is replaced only with ``force``.

    Raises:
        OutputError: a path that cannot be a video output, or one that cannot be
            written (read-only existing output, unwritable folder, full disk, ...).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"frames must be a non-empty [T, H, W, 3] uint8 array, "
            f"got {frames.dtype} {frames.shape}"
        )
    target = check_video_output(path)
    if target.suffix.lower() in VIDEO_EXTENSIONS:
        _save_encoded(frames, target, fps, crf, pix_fmt, force)
    else:
        _save_folder(frames, target, force)
    return target


def _save_encoded(frames: np.ndarray, target: Path, fps: float, crf: int, pix_fmt: str,
                  force: bool) -> None:
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise DataError(f"{target}: yuv420p needs even frame sizes, got {width}x{height}")
    av = require("av", "video", f"writing the video file {target}")
    with staged_output(target, force) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))


def _save_folder(frames: np.ndarray, target: Path, force: bool) -> None:
    with staged_output(target, force, folder=True) as tmp:
        for index, frame in enumerate(frames):
            Image.fromarray(frame).save(tmp / f"frame_{index:05d}.png")


class VideoSampler:
    """Random ``(t, y, x)`` pixel batches with every frame visited each epoch.

    Frames are visited in a random permutation, cycling across batches: a batch of
    ``N`` samples takes the next ``N`` entries of the frame cycle (so each batch spans
    ``min(N, T)`` distinct frames evenly) and a uniform random pixel in each. An epoch
    is ``ceil(T * H * W / N)`` batches; its first ``ceil(T / N)`` batches already
    touch every frame.
    """

    def __init__(
        self, num_frames: int, height: int, width: int, batch_size: int = 2**18, seed: int = 0
    ) -> None:
        if min(num_frames, height, width, batch_size) < 1:
            raise ValueError(
                f"sampler sizes must be >= 1, "
                f"got T={num_frames} H={height} W={width} N={batch_size}"
            )
        self.num_frames, self.height, self.width = num_frames, height, width
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(num_frames)
        self._cursor = 0

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch: ``ceil(T * H * W / batch_size)``."""
        return math.ceil(self.num_frames * self.height * self.width / self.batch_size)

    def sample(self) -> np.ndarray:
        """Next batch: ``indices: [N, 3] int64`` with columns ``(t, y, x)``."""
        t = np.empty(self.batch_size, dtype=np.int64)
        filled = 0
        while filled < self.batch_size:
            take = min(self.batch_size - filled, self.num_frames - self._cursor)
            t[filled : filled + take] = self._order[self._cursor : self._cursor + take]
            filled += take
            self._cursor += take
            if self._cursor == self.num_frames:
                self._order = self._rng.permutation(self.num_frames)
                self._cursor = 0
        y = self._rng.integers(0, self.height, self.batch_size)
        x = self._rng.integers(0, self.width, self.batch_size)
        return np.stack([t, y, x], axis=1)

    def __iter__(self) -> Iterator[np.ndarray]:
        """One epoch of batches (see :meth:`sample`)."""
        for _ in range(self.steps_per_epoch):
            yield self.sample()

    def coords_of(self, indices: np.ndarray) -> np.ndarray:
        """``indices: [N, 3] (t, y, x)`` → pixel centres ``[N, 3] float32 (x, y, t)`` in [0,1]."""
        return coords_of(indices, self.num_frames, self.height, self.width)


def coords_of(indices: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
    """``indices: [N, 3] int (t, y, x)`` → ``[N, 3] float32 ((x+.5)/W, (y+.5)/H, (t+.5)/T)``."""
    idx = np.asarray(indices, dtype=np.float64)
    scale = np.array([width, height, num_frames], dtype=np.float64)
    return ((idx[:, ::-1] + 0.5) / scale).astype(np.float32)


def colors_of(frames: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Batch targets: ``frames: [T, H, W, 3] uint8`` at ``indices: [N, 3]`` → ``[N, 3] float32``.

    Values are in [0, 1]; only the batch is converted to float.
    """
    picked = frames[indices[:, 0], indices[:, 1], indices[:, 2]]
    return picked.astype(np.float32) / 255.0


def frame_coords(t: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Coordinates of every pixel of frame ``t``: ``[H * W, 3] float32 (x, y, t)``, row-major."""
    if not 0 <= t < num_frames:
        raise ValueError(f"frame {t} is outside [0, {num_frames})")
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    indices = np.stack([np.full(height * width, t), y.ravel(), x.ravel()], axis=1)
    return coords_of(indices, num_frames, height, width)


def iter_frame_coords(num_frames: int, height: int, width: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(t, coords: [H * W, 3] float32)`` for every frame, for full-frame evaluation."""
    for t in range(num_frames):
        yield t, frame_coords(t, num_frames, height, width)
