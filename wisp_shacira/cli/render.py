"""``wisp-shacira render``: render a scene file from the camera poses of a transforms JSON.

Usage::

    wisp-shacira render scene.shac --poses transforms_test.json -o OUT/ [--video]

Writes ``OUT/NAME.png`` per view (8-bit). When the JSON's images exist, prints PSNR
and SSIM per view and their mean (ground truth composited over the model's
background and downscaled like the training data). ``--video`` adds a turntable
``OUT/turntable.mp4`` around the scene. ``-o`` and ``--max-lod`` are checked before
anything is decoded, and each output before anything is rendered; ``--force``
replaces read-only outputs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wisp_shacira.cli.options import (add_force, add_max_memory, check_max_lod,
                                      check_output_folder, read_header)
from wisp_shacira.tasks.report import format_table
from wisp_shacira.datasets.image import encode_png
from wisp_shacira.datasets.video import check_video_output, save_video
from wisp_shacira.errors import ConfigError
from wisp_shacira.metrics import mean_metric
from wisp_shacira.outputs import check_writable, write_atomic
from wisp_shacira.tasks.common import check_not_input, timed, write_json
from wisp_shacira.tasks.nerf_eval import load_any_model, render_turntable, render_views, view_metrics
from wisp_shacira.tasks.nerf_poses import read_poses
from wisp_shacira.train.rd import resolve_device


def _metrics_table(names: list[str], has_gt: list[bool], psnrs: list[float],
                   ssims: list[float]) -> str:
    rows: list[list[object]] = []
    values = iter(zip(psnrs, ssims))
    for name, gt in zip(names, has_gt):
        rows.append([name, *next(values)] if gt else [name, "-", "-"])
    rows.append([f"mean ({len(psnrs)} views)", float(np.mean(psnrs)), mean_metric(ssims)])
    return format_table(["view", "PSNR", "SSIM"], rows)


def _check_before_decoding(args: argparse.Namespace, source: Path, out_dir: Path) -> None:
    """Options, ``-o`` and ``--max-lod`` checked before the file is decoded."""
    if args.frames < 1 or args.fps <= 0:
        raise ConfigError(f"--frames must be >= 1 and --fps > 0, got {args.frames}, {args.fps}")
    check_output_folder(out_dir)
    check_writable(out_dir / "metrics.json", force=True)
    if args.video:
        check_video_output(out_dir / "turntable.mp4")    # an MP4 needs the extra "video"
    if source.suffix.lower() == ".shac" and args.max_lod is not None:
        check_max_lod(source, args.max_lod, read_header(source).num_levels)


def _check_writable(targets: list[Path], metrics: bool, out_dir: Path,
                    args: argparse.Namespace) -> None:
    """Every file the render will write, checked before rendering (read-only needs --force)."""
    writes = list(targets)
    if metrics:
        writes.append(out_dir / "metrics.json")
    if args.video:
        writes.append(out_dir / "turntable.mp4")
    for target in writes:
        check_writable(target, args.force)


def cmd_render(args: argparse.Namespace) -> None:
    """Render the poses of ``args.poses`` from the scene file ``args.file``."""
    out_dir, source = Path(args.output), Path(args.file)
    _check_before_decoding(args, source, out_dir)
    device = resolve_device(args.device)
    with timed() as load_time:
        model = load_any_model(source, args.max_lod, device)
    poses = read_poses(Path(args.poses), model.meta)
    targets = [out_dir / f"{name}.png" for name in poses.names]
    inputs = [source, Path(args.poses)] + [p for p in poses.image_paths if p is not None]
    for target in targets + [out_dir / "metrics.json", out_dir / "turntable.mp4"]:
        check_not_input(target, inputs)
    _check_writable(targets, any(img is not None for img in poses.images), out_dir, args)
    with timed() as render_time:
        renders = render_views(model, poses.c2w, poses.intrinsics, poses.height, poses.width)
    for target, view in zip(targets, renders):
        write_atomic(target, encode_png(view.astype(np.float32) / 255.0, 8), force=args.force)
    print(f"rendered {len(targets)} views of {poses.width}x{poses.height} into {out_dir} "
          f"(decode {load_time[0]:.1f} s, render {render_time[0]:.1f} s)")
    has_gt = [img is not None for img in poses.images]
    if any(has_gt):
        pairs = [(r, img) for r, img in zip(renders, poses.images) if img is not None]
        psnrs, ssims = view_metrics(np.stack([r for r, _ in pairs]), np.stack([g for _, g in pairs]))
        print(_metrics_table(poses.names, has_gt, psnrs, ssims))
        per_view = [{"name": n, "psnr": p, "ssim": s}
                    for n, p, s in zip([n for n, g in zip(poses.names, has_gt) if g], psnrs, ssims)]
        write_json(out_dir / "metrics.json", {"file": str(source), "poses": str(args.poses),
                                              "psnr": float(np.mean(psnrs)),
                                              "ssim": mean_metric(ssims), "views": per_view},
                   force=args.force)
    if args.video:
        path = save_video(render_turntable(model, args.frames), out_dir / "turntable.mp4",
                          fps=args.fps, pix_fmt="yuv420p" if _even(model.meta) else "yuv444p",
                          force=args.force)
        print(f"wrote {path}")


def _even(meta: dict) -> bool:
    scene = meta.get("scene", {})
    return int(scene.get("height", 1)) % 2 == 0 and int(scene.get("width", 1)) % 2 == 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``render`` subcommand to ``wisp-shacira``."""
    parser = subparsers.add_parser("render", help="render a scene .shac from camera poses "
                                                  "(NeRF-synthetic transforms JSON)")
    parser.add_argument("file", help="scene .shac file (or a baseline model.pt)")
    parser.add_argument("--poses", required=True, help="transforms JSON with the cameras")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--video", action="store_true", help="also write a turntable MP4")
    parser.add_argument("--frames", type=int, default=60, help="turntable frames (default 60)")
    parser.add_argument("--fps", type=float, default=24.0, help="turntable frame rate")
    parser.add_argument("--max-lod", type=int, default=None,
                        help="decode levels 0..N-1 only (N in 1..levels of the file)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_force(parser)
    add_max_memory(parser)
    parser.set_defaults(func=cmd_render)

