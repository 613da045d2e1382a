"""Options shared by the ``wisp-shacira`` subcommands: ``--force``, ``--max-memory``,
``--max-lod`` checks and output-path checks made before any decoding or rendering."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from wisp_shacira.codec.limits import ENV_MAX_MEMORY, parse_size
from wisp_shacira.codec.model_io import ShacModel, read_shac
from wisp_shacira.datasets.image import IMAGE_SUFFIXES
from wisp_shacira.datasets.video import NOT_FOLDER_SUFFIXES, VIDEO_EXTENSIONS
from wisp_shacira.errors import ConfigError, OutputError


def add_force(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace existing read-only outputs."""
    parser.add_argument("--force", action="store_true",
                        help="replace existing outputs even when they are read-only")


def add_max_memory(parser: argparse.ArgumentParser) -> None:
    """``--max-memory SIZE``: the decode memory limit for this process."""
    parser.add_argument("--max-memory", default=None, metavar="SIZE",
                        help=f"refuse decodes needing more memory than SIZE (bytes, or e.g. "
                             f"512M, 8G, 1.5GiB; sets ${ENV_MAX_MEMORY})")


def apply_max_memory(args: argparse.Namespace) -> None:
    """Set ``$WISP_SHACIRA_MAX_MEMORY`` (bytes) from ``--max-memory``, when given.

    Raises:
        ConfigError: not a size.
    """
    text = getattr(args, "max_memory", None)
    if text is not None:
        os.environ[ENV_MAX_MEMORY] = str(parse_size(text, "--max-memory"))


def read_header(path: str | os.PathLike, partial: bool = True) -> ShacModel:
    """The configuration and tables of a ``.shac`` file, without decoding any level."""
    return read_shac(path, max_lod=0, partial=partial)


def check_max_lod(name: str | os.PathLike, max_lod: int | None, num_levels: int) -> None:
    """Refuse ``--max-lod`` outside ``1..num_levels`` (None = all levels).

    Raises:
        ConfigError: naming the valid range.
    """
    if max_lod is None:
        return
    if num_levels < 1:
        raise ConfigError(f"{name}: the file has no latent level to decode")
    if not 1 <= max_lod <= num_levels:
        raise ConfigError(f"{name}: --max-lod {max_lod} is out of range 1..{num_levels} "
                          f"(the file has {num_levels} levels)")


def check_output_folder(path: str | os.PathLike) -> Path:
    """Refuse a folder output (``-o`` of ``render`` or ``lod``) that is named like a file
    (``out.png``, ``out.mp4``, ...) or is an existing file.

    Raises:
        OutputError: the path cannot be a folder.
    """
    folder = Path(path)
    suffix = folder.suffix.lower()
    if suffix in IMAGE_SUFFIXES + VIDEO_EXTENSIONS + NOT_FOLDER_SUFFIXES and not folder.is_dir():
        raise OutputError(f"{folder}: the output is a folder; this name ends in {suffix}")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: the output is a folder, and this is an existing file")
    return folder
