"""``wisp-shacira encode --config FILE.yaml [--section.key VALUE ...]``: train, export,
decode from the file and report, for any task (the config's ``task`` key picks it).

``--config`` takes a YAML file or the name of a bundled config (``shacira_nerf``,
``shacira_image``, ...). Every config value can be overridden with its dotted path;
bare ``--resume`` means ``--resume true``. ``--help`` lists every key with its type,
default (or, with ``--config``, its value in that config) and meaning.

Data-parallel training of one field (image, video, nerf tasks; see ``docs/distributed.md``):
``torchrun --nproc-per-node N --no-python wisp-shacira encode --config ...`` (or
``python -m torch.distributed.run ...``). With ``WORLD_SIZE > 1`` in the environment each
process joins the group (gloo on the CPU, nccl on ``cuda:LOCAL_RANK``), trains on its
slice of every batch, and only rank 0 writes, logs and prints.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import textwrap
from pathlib import Path
from typing import Any

from wisp_shacira.config import (build_config, describe_config, leaf_keys, load_yaml, merge,
                                 parse_overrides)
from wisp_shacira.errors import ConfigError
from wisp_shacira.resources import config_names, resolve_config
from wisp_shacira.tasks import TASKS, get_task
from wisp_shacira.tasks.common import default_output_dir
from wisp_shacira.tasks.protocol import Task
from wisp_shacira.train.distributed import process_group, world_from_env
from wisp_shacira.train.rd import resolve_device

FLAGS = ("--resume",)
MEANING_WIDTH = 100


def expand_flags(rest: list[str]) -> list[str]:
    """Bare boolean flags (``--resume``) become ``--resume=true``."""
    out = []
    for i, arg in enumerate(rest):
        is_bare = arg in FLAGS and (i + 1 == len(rest) or rest[i + 1].startswith("--"))
        out.append(f"{arg}=true" if is_bare else arg)
    return out


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    text = text if end < 0 else text[:end + 1]
    return textwrap.shorten(text, MEANING_WIDTH, placeholder=" ...")


def keys_help(task: Task, cfg: object | None = None) -> str:
    """The table of every key of ``task``'s config: key, type, default or ``cfg``'s value,
    meaning."""
    docs = describe_config(task.config_type, cfg)
    column = "value" if cfg is not None else "default"
    rows = [("key", "type", column, "meaning")]
    rows += [(d.key, d.type, repr(d.value), _first_sentence(d.meaning) if d.key != "task"
              else f"the pipeline ({', '.join(TASKS)})") for d in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"config keys of the {task.name} task (--key value overrides the YAML):"]
    lines += ["  " + "  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths)), r[3]])
              for r in rows]
    return "\n".join(lines)


def check_keys(task: Task, data: dict, where: str) -> None:
    """Name the problem of every key ``task`` does not have: another task's key (the
    config or an override mixes tasks), or a near miss ("did you mean")."""
    own = {d.key for d in describe_config(task.config_type)}
    for key in leaf_keys(data):
        if key in own or any(key.startswith(f"{k}.") for k in own):
            continue
        others = [name for name in TASKS if name != task.name
                  and key in {d.key for d in describe_config(get_task(name).config_type)}]
        if others:
            raise ConfigError(f"{where}: {key} is a key of the {' / '.join(others)} task, but "
                              f"this config has task: {task.name}")
        close = difflib.get_close_matches(key, sorted(own), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{where}: unknown config key {key}{hint} "
                          f"(wisp-shacira encode --config {where} --help lists them)")


def load_run_config(config: str, rest: list[str]) -> tuple[Task, object]:
    """The task and its typed config from ``--config`` and the overrides.

    Raises:
        ConfigError: no such file or bundled config, no or an unknown task, bad keys/values.
    """
    task, _, cfg = load_run_data(config, rest)
    return task, cfg


def load_run_data(config: str, rest: list[str]) -> tuple[Task, dict, object]:
    """The task, the merged config data (YAML and overrides) and its typed config.

    Raises:
        ConfigError: as :func:`load_run_config`.
    """
    path = resolve_config(config)
    data = merge(load_yaml(path), parse_overrides(expand_flags(rest)))
    if "task" not in data:
        wisp = {"blas", "tracker"} <= set(data)
        hint = ("; it looks like a Kaolin-Wisp app config (blas, tracker sections): run it "
                "with python app/main_wisp.py --config ...") if wisp else ""
        raise ConfigError(f"{path}: missing the top-level key 'task' "
                          f"({', '.join(TASKS)}){hint}")
    task = get_task(data["task"])
    check_keys(task, data, str(config))
    try:
        return task, data, build_config(task.config_type, data)
    except ConfigError as exc:
        raise ConfigError(f"{config}: {exc}") from exc


def cmd_encode(args: argparse.Namespace, rest: list[str]) -> None:
    """Run the config's task end to end and print its summary."""
    if args.help:
        print(args.parser.format_help())
        if args.config is not None:
            task, cfg = load_run_config(args.config, rest)
            print(keys_help(task, cfg))
        else:
            print(f"bundled configs: {', '.join(config_names())}\n")
            print("\n\n".join(keys_help(get_task(name)) for name in TASKS))
        return
    if args.config is None:
        raise ConfigError(f"encode needs --config FILE.yaml or a bundled config "
                          f"({', '.join(config_names())})")
    task, cfg = load_run_config(args.config, rest)
    out_dir = Path(cfg.output) if cfg.output else default_output_dir(task.name)
    if world_from_env() > 1:
        _encode_parallel(task, cfg, out_dir)
        return
    logging.getLogger("wisp_shacira").info("writing outputs to %s", out_dir)
    report = task.run(cfg, out_dir)
    print(task.summary(report))
    print(f"outputs in {out_dir}")


def _encode_parallel(task: Task, cfg: Any, out_dir: Path) -> None:
    """:func:`cmd_encode` in one process of a ``torchrun`` group: train together, rank 0
    writes, logs and prints (rank 0's output folder for every rank).

    Raises:
        ConfigError: a task that does not train data-parallel.
    """
    if not task.data_parallel:
        raise ConfigError(f"the {task.name} task does not train under torchrun "
                          f"(WORLD_SIZE={world_from_env()}); run it as one process")
    with process_group(resolve_device(cfg.trainer.device)) as parallel:
        logger = logging.getLogger("wisp_shacira")
        if not parallel.is_main:
            logger.setLevel(logging.ERROR)
        out_dir = parallel.broadcast(out_dir)
        logger.info("writing outputs to %s (%d processes, %s)", out_dir, parallel.world,
                    parallel.backend)
        report = task.run(cfg, out_dir, parallel=parallel)
        if parallel.is_main:
            print(task.summary(report))
            print(f"outputs in {out_dir}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode", add_help=False, help="compress: train, export a .shac file, decode it, report",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="example: wisp-shacira encode --config shacira_image --dataset.path photo.png "
               "--output out/ --trainer.target_bpp 0.5")
    parser.add_argument("--config", help="YAML config file or bundled config name")
    parser.add_argument("-h", "--help", action="store_true",
                        help="show this help and every config key")
    parser.set_defaults(func=cmd_encode, takes_overrides=True, parser=parser)
