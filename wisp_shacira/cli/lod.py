"""``wisp-shacira lod``: bytes and quality of every level of detail of a ``.shac`` file.

Usage::

    wisp-shacira lod FILE.shac [-o DIR] [--reference IMAGE_OR_VIDEO] [--poses JSON] [--views N]

Prints, per LOD, the bytes a stream needs to render it (the file's prefix up to and
including that level) and its PSNR: against ``--reference`` (the original image or
video), against the views of ``--poses`` that have images (a scene), or else against
the highest LOD. Writes ``DIR/lod.json``, ``DIR/lod_psnr.png`` (bytes vs PSNR; needs the
extra ``plots``, skipped with a warning without it) and
``DIR/lod_strip.png`` (one render per LOD); DIR defaults to ``FILE_lod`` beside the
file. A truncated or damaged file is measured on the levels it fully holds. The
outputs are checked (folder name, writability) before anything is decoded;
``--force`` replaces read-only ones.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from wisp_shacira.cli.options import add_force, add_max_memory, check_output_folder
from wisp_shacira.tasks.report import format_table
from wisp_shacira.errors import ConfigError, MissingExtraError


def _table(report) -> str:
    rows = [[r.lod, r.bytes, f"{100 * r.bytes / report.total_bytes:.1f}%",
             f"{r.psnr:.2f}" if math.isfinite(r.psnr) else "inf", f"{r.seconds:.2f}"]
            for r in report.rows]
    return format_table(["LOD", "bytes", "of file", "PSNR dB", "decode+render s"], rows)


def cmd_lod(args: argparse.Namespace) -> None:
    """Measure every LOD of ``args.file``; print the table and write the outputs."""
    from wisp_shacira.lod_report import analyse, save_plot, save_strip
    from wisp_shacira.outputs import check_writable
    from wisp_shacira.tasks.common import check_not_input, write_json

    source = Path(args.file)
    if args.views is not None and args.views < 1:
        raise ConfigError(f"--views must be >= 1, got {args.views}")
    out_dir = Path(args.output) if args.output else source.with_name(f"{source.stem}_lod")
    check_output_folder(out_dir)
    targets = [out_dir / n for n in ("lod.json", "lod_psnr.png", "lod_strip.png")]
    inputs = [source] + [Path(p) for p in (args.reference, args.poses) if p]
    for target in targets:
        check_not_input(target, inputs)
        check_writable(target, args.force, create=False)
    report = analyse(source, Path(args.reference) if args.reference else None,
                     Path(args.poses) if args.poses else None, args.views)
    if report.warning:
        print(f"warning: {report.warning}", file=sys.stderr)
    print(f"{source}: {report.task}, {report.num_levels} levels, {report.total_bytes} bytes; "
          f"PSNR vs {report.reference}")
    print(_table(report))
    write_json(targets[0], report.to_json(), force=args.force)
    written = [targets[0], targets[1].name, targets[2].name]
    try:
        save_plot(report, targets[1], force=args.force)
    except MissingExtraError as exc:   # core install: the table, JSON and strip still count
        print(f"warning: {exc}; {targets[1].name} not written", file=sys.stderr)
        written.remove(targets[1].name)
    save_strip(report, targets[2], force=args.force)
    print(f"wrote {', '.join(map(str, written))}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lod`` subcommand to ``wisp-shacira``."""
    parser = subparsers.add_parser("lod", help="bytes and PSNR per level of detail of a .shac file")
    parser.add_argument("file", help=".shac file (image, video or scene; may be truncated)")
    parser.add_argument("-o", "--output", default=None,
                        help="output folder (default: FILE_lod beside the file)")
    parser.add_argument("--reference", default=None,
                        help="original image or video to measure PSNR against")
    parser.add_argument("--poses", default=None,
                        help="scene: transforms JSON whose views (with images) are measured")
    parser.add_argument("--views", type=int, default=None,
                        help="scene: measure at most N views of --poses")
    add_force(parser)
    add_max_memory(parser)
    parser.set_defaults(func=cmd_lod)
