"""``wisp-shacira``: compress signals into ``.shac`` files, inspect and decode them.

Subcommands: ``encode --config CONFIG`` (train, export, decode check, report; any
task), ``batch`` (many inputs and rate points, resumable, on Ray when asked), ``info FILE`` (sections and byte sizes), ``decode FILE -o OUT`` (rebuild the
signal from the file alone), ``render``, ``lod``, ``view``. User errors print one line and exit 2.
Commands that write files refuse to replace a read-only output unless ``--force``;
``--max-memory SIZE`` bounds the memory a decode may need.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from wisp_shacira.cli.options import (add_force, add_max_memory, apply_max_memory,
                                      check_max_lod, read_header)
from wisp_shacira.tasks.report import format_table
from wisp_shacira.codec.container import read_file_bytes, unpack_sections
from wisp_shacira.codec.limits import ENV_MAX_MEMORY
from wisp_shacira.codec.model_io import decode_model, section_offsets
from wisp_shacira.errors import ConfigError, ShaciraError
from wisp_shacira.fields.weights import kinds_in_file
from wisp_shacira.tasks import get_task
from wisp_shacira.tasks.common import prepare_decode_output
from wisp_shacira.tasks.image_tiles import parse_region


WEIGHT_STORAGE = {"step": "integers times a power-of-two step, entropy-coded",
                "q8": "int8 rows with a float16 scale", "f16": "float16", "f32": "float32"}


def cmd_info(args: argparse.Namespace) -> None:
    """Print the sections of a file with their sizes."""
    data = read_file_bytes(args.file)
    container = unpack_sections(data, args.file, partial=True)
    rows = [(span.name, span.nbytes) for span in section_offsets(data, args.file)]
    total, problem = len(data), container.problem
    model = decode_model(data, args.file, max_lod=0, partial=True)
    coder = "context" if model.context is not None else "factorized"
    grid = model.config.get("grid")
    prior = grid.get("entropy_model", "factorized") if isinstance(grid, dict) else "factorized"
    kinds = kinds_in_file(model.weights)
    storage = ", ".join(text for kind, text in WEIGHT_STORAGE.items() if kind in kinds) or "nothing"
    print(f"{args.file}: format version {container.version}, task {model.config.get('task')}, "
          f"{model.num_levels} levels, latent dim {model.latent_dim}, latents coded with the "
          f"{coder} model (trained with the {prior} prior), weights stored as {storage}, "
          f"{total} bytes")
    if model.config.get("coded_rows") is not None:
        print(f"levels code only the rows that coded_rows {model.config['coded_rows']!r} "
              f"selects (a scene: those read inside its stored occupancy grid)")
    print(format_table(["section", "bytes"], rows + [("header", total - sum(r[1] for r in rows))]))
    if problem:
        print(f"warning: {problem}")


def cmd_decode(args: argparse.Namespace) -> None:
    """Rebuild the signal stored in a file (task taken from the file).

    The header, ``--max-lod`` and the output path (suffix, writability, read-only
    existing output) are checked before any level is decoded.
    """
    source, output = Path(args.file), Path(args.output)
    header = read_header(source, partial=args.partial)
    name = header.config.get("task") if isinstance(header.config, dict) else None
    task = get_task(name)
    check_max_lod(source, args.max_lod, header.num_levels)
    prepare_decode_output(task, source, output, args.force)
    if args.partial and (args.region is not None or args.downscale is not None):
        raise ConfigError("--region and --downscale decode a whole file; drop --partial")
    if args.partial:
        from wisp_shacira.lod import decode_partial
        out, stream = decode_partial(source, output, args.max_lod, force=args.force)
        if stream.warning():
            print(f"warning: {stream.warning()}", file=sys.stderr)
        print(f"wrote {out} (LOD {stream.available} of {stream.num_levels})")
        return
    out = task.decode(source, output, max_lod=args.max_lod, force=args.force,
                      **_window_options(args, task.name))
    print(f"wrote {out}")


def _window_options(args: argparse.Namespace, task: str) -> dict:
    """``--region`` / ``--downscale`` as keyword arguments of the image decoder."""
    if args.region is None and args.downscale is None:
        return {}
    if task != "image":
        raise ConfigError(f"--region and --downscale are for images; {args.file} holds a {task}")
    return {"region": None if args.region is None else parse_region(args.region),
            "downscale": 1 if args.downscale is None else args.downscale}


EXTRA_COMMANDS: list[str] = [
    "wisp_shacira.cli.encode", "wisp_shacira.cli.batch", "wisp_shacira.cli.render",
    "wisp_shacira.cli.lod", "wisp_shacira.cli.view",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wisp-shacira", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list the sections of a .shac file")
    info.add_argument("file")
    add_max_memory(info)
    info.set_defaults(func=cmd_info)
    dec = sub.add_parser("decode", help="decode a .shac file (image -> PNG/TIFF, video -> MP4/frames)")
    dec.add_argument("file")
    dec.add_argument("-o", "--output", required=True, help="output file or folder")
    dec.add_argument("--max-lod", type=int, default=None,
                     help="decode levels 0..N-1 only (N in 1..levels of the file)")
    dec.add_argument("--partial", action="store_true",
                     help="accept a truncated/damaged stream: decode the levels it fully holds")
    dec.add_argument("--region", default=None, metavar="X,Y,W,H",
                     help="images: decode only this window (pixels; x, y of its top-left corner)")
    dec.add_argument("--downscale", type=int, default=None, metavar="S",
                     help="images: every S-th pixel (pixel S//2 of each SxS block): a preview")
    add_force(dec)
    add_max_memory(dec)
    dec.set_defaults(func=cmd_decode)
    for name in EXTRA_COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def run_guarded(func: Callable[[], None]) -> int:
    """Run ``func``; user errors become one line on stderr and exit code 2."""
    try:
        func()
    except ShaciraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _dispatch(args: argparse.Namespace, rest: list[str]) -> None:
    """Run the subcommand with ``--max-memory`` applied for its duration only; ``rest``:
    the config overrides of ``encode``."""
    before = os.environ.get(ENV_MAX_MEMORY)
    try:
        apply_max_memory(args)
        if getattr(args, "takes_overrides", False):
            args.func(args, rest)
        else:
            args.func(args)
    finally:
        if before is None:
            os.environ.pop(ENV_MAX_MEMORY, None)
        else:
            os.environ[ENV_MAX_MEMORY] = before


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wisp-shacira``; returns the exit code."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_guarded(lambda: _dispatch(args, rest))


if __name__ == "__main__":
    sys.exit(main())
