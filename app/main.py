"""Train -> export -> decode -> report, for any task, from a YAML config.

Usage::

    python app/main.py --config configs/shacira_image.yaml [--output DIR] [--section.key VALUE ...]

The config's ``task`` key picks the pipeline (image, video, nerf). Any config value
can be overridden from the command line with its dotted path; unknown keys are errors.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wisp_shacira.cli.main import run_guarded  # noqa: E402
from wisp_shacira.cli.report import format_table  # noqa: E402
from wisp_shacira.config import load_config, load_yaml, merge, parse_overrides  # noqa: E402
from wisp_shacira.errors import ConfigError  # noqa: E402
from wisp_shacira.tasks import get_task  # noqa: E402
from wisp_shacira.tasks.common import default_output_dir  # noqa: E402

FLAGS = ("--resume",)


def _expand_flags(rest: list[str]) -> list[str]:
    """Bare boolean flags (``--resume``) become ``--resume=true``."""
    out = []
    for i, arg in enumerate(rest):
        is_bare = arg in FLAGS and (i + 1 == len(rest) or rest[i + 1].startswith("--"))
        out.append(f"{arg}=true" if is_bare else arg)
    return out


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--config", required=True, help="YAML config file")
    args, rest = parser.parse_known_args(argv)
    rest = _expand_flags(rest)
    data = merge(load_yaml(args.config), parse_overrides(rest))
    if "task" not in data:
        raise ConfigError(f"{args.config}: missing the top-level key 'task'")
    task = get_task(data["task"])
    cfg = load_config(task.AppConfig, args.config, rest)
    out_dir = Path(cfg.output) if cfg.output else default_output_dir(data["task"])
    logging.getLogger("wisp_shacira").info("writing outputs to %s", out_dir)
    report = task.run(cfg, out_dir)
    print(task.summary(report) if hasattr(task, "summary") else _summary(report))
    print(f"outputs in {out_dir}")


def _summary(report: dict) -> str:
    rows = [[r["name"], r["psnr"], r["ssim"], r["bpp"], r["bytes"], r["encode_seconds"],
             r["decode_seconds"]] for r in report["images"]]
    mean = report["mean"]
    rows.append(["mean", mean["psnr"], mean["ssim"], mean["bpp"], mean["bytes"],
                 mean["encode_seconds"], mean["decode_seconds"]])
    return format_table(["image", "PSNR", "SSIM", "BPP", "bytes", "encode s", "decode s"], rows)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run_guarded(lambda: _main(sys.argv[1:])))
