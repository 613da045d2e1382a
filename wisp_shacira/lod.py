"""Progressive level-of-detail (LOD) decoding of ``.shac`` files (SHACIRA Sec. 4.5).

A ``.shac`` file holds CONFIG, TABLES and WEIGHTS, then one section per grid level,
coarse to fine. LOD ``l`` uses the first ``l`` levels with the finer ones zeroed, so
it needs only the first :attr:`LodStream.lod_bytes` ``[l - 1]`` bytes of the file: a
stream can be shown once its headers and first level have arrived and refined as
further levels arrive.

:func:`open_stream` decodes a whole file or a truncated/damaged prefix and says which
levels it holds; :func:`open_source` asks the file's task for a renderer
(:class:`~wisp_shacira.tasks.protocol.LodSource`) of any held LOD. Masking the finer
levels of a fully decoded model gives exactly what a decoder of the prefix gives (the
finer latents are zero either way and contribute nothing).
:mod:`wisp_shacira.lod_report` measures bytes and quality per LOD.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wisp_shacira.codec.container import read_file_bytes
from wisp_shacira.codec.model_io import ShacModel, decode_model, level_prefix_bytes
from wisp_shacira.errors import BitstreamError, ConfigError
from wisp_shacira.tasks import TASKS, get_task
from wisp_shacira.tasks.common import prepare_decode_output
from wisp_shacira.tasks.protocol import LodSource, Task


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
    task = decode_model(data, name, max_lod=0, partial=partial).config.get("task")
    if task in TASKS:
        get_task(task)       # imported before the levels: a task may register row masks
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


def stream_task(stream: LodStream) -> Task:
    """The task of the stream's file.

    Raises:
        BitstreamError: the file names no known task.
    """
    try:
        return get_task(stream.task)
    except ConfigError as exc:
        raise BitstreamError(f"{stream.name}: holds a {stream.task!r} model ({exc})") from exc


def open_source(stream: LodStream) -> LodSource:
    """The renderer of a decoded stream, from the task its file names."""
    return stream_task(stream).open_source(stream.model, stream.name)


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
    task = stream_task(stream)
    source = task.open_source(stream.model, stream.name)
    out = prepare_decode_output(task, Path(path), Path(out), force)
    return source.write(stream.available, out, force), stream
