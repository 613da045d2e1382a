"""``wisp.config`` (test double) on the real hydra-zen and tyro.

As ``wisp/config/utils.py`` and ``_hydrazen.py``: ``autoconfig`` builds one hydra-zen
``builds(...)`` dataclass per constructor (``__init__`` and classmethods annotated as
returning the class), named ``Config<Class><Ctor>``, with ``zen_meta`` fields
``__ctor_name__`` / ``__supported_args__`` / ``__missing_args__``, ``zen_partial`` when an
argument is not configurable and ``hydra_convert='all'``; each is a tyro subcommand named
by ``__ctor_name__``. ``configure`` is ``dataclass`` without a target, hydra-zen's
``hydrated_dataclass`` with one. ``parse_config`` turns the YAML into tyro arguments
(``constructor`` -> subcommand, keys -> ``--group.key=value``) before the command line,
and parses with tyro's markers of ``_tyro.py:49``. Divergences: short argument names
(``--dataset-path`` for ``--dataset.dataset-path``) are not resolved, and the arguments
are placed after their subcommand instead of using ``ConsolidateSubcommandArgs`` (which
tyro 1.x no longer applies to this layout; Wisp pins tyro 0.3.38).
"""
from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from typing import Annotated, Any, Callable, List, Optional, Union

import tyro
import yaml
from hydra_zen import builds, get_target, hydrated_dataclass, instantiate as zen_instantiate
from hydra_zen import is_partial_builds

_SCALARS = (int, float, str, bool, type(None))


def _valid(hint: Any) -> bool:
    """Types Wisp's ``check_valid_type`` accepts: scalars, Literals, Enums, Optional and
    tuples of those."""
    if hint in _SCALARS:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return True
    if origin in (Union, tuple):
        return all(a is Ellipsis or _valid(a) for a in typing.get_args(hint))
    return False


def _subcommand(cfg: type) -> Any:
    return Annotated[cfg, tyro.conf.subcommand(name=cfg.__ctor_name__, prefix_name=True)]


def _build(cls: type, func: Callable) -> type:
    """The ``Config<Class>[<Ctor>]`` dataclass of one constructor (``_hydrazen.py:137``)."""
    if func is cls.__init__:
        target, name, ctor = cls, f"Config{cls.__name__}", cls.__name__
    else:
        target = func.__get__(cls) if not hasattr(func, "__func__") else func
        name = "".join([f"Config{cls.__name__}"] + [s.capitalize() for s in func.__name__.split("_")])
        ctor = f"{cls.__name__}.{func.__name__}"
    hints = typing.get_type_hints(func)
    params = inspect.signature(func).parameters
    fields, missing = [], []
    for key, param in params.items():
        if key in ("self", "cls", "args", "kwargs"):
            continue
        hint = hints.get(key, type(param.default) if param.default is not inspect._empty else Any)
        if not _valid(hint):
            missing.append(key)
            continue
        default = param.default if param.default is not inspect._empty else dataclasses.MISSING
        default = default.item() if hasattr(default, "item") else default   # numpy scalars
        fields.append((key, hint, dataclasses.field(default=default)))
    base = dataclasses.make_dataclass(f"_{name}Fields", fields)
    cfg = builds(target, populate_full_signature=False, builds_bases=(base,),
                 zen_dataclass={"cls_name": name, "frozen": False},
                 zen_meta={"__ctor_name__": ctor, "__supported_args__": "$".join(f[0] for f in fields),
                           "__missing_args__": "$".join(missing)},
                 zen_partial=len(missing) > 0, hydra_convert="all")
    return cfg


def _constructors(cls: type) -> list:
    methods = [m for _, m in inspect.getmembers(cls, predicate=inspect.ismethod)
               if typing.get_type_hints(m).get("return") == cls]
    return [cls.__init__] + [m.__func__ for m in methods]


def autoconfig(*classes_and_callables: Any, exclude: List[Callable] = None) -> Any:
    configs = []
    for item in classes_and_callables:
        if inspect.isclass(item):
            configs += [_build(item, f) for f in _constructors(item)]
        else:
            cls = inspect.getmodule(item).__dict__[item.__qualname__.split(".")[0]]
            configs.append(_build(cls, item.__func__ if hasattr(item, "__func__") else item))
    annotated = [_subcommand(c) for c in configs]
    return annotated[0] if len(annotated) == 1 else Union.__getitem__(tuple(annotated))


def configure(cls=None, /, *, target: Callable[..., Any] = None, import_error: str = None):
    def process(klass):
        if target is None:
            return dataclasses.dataclass(klass)
        fields = dict(klass.__annotations__)
        params = set(inspect.signature(target).parameters)
        missing = [p for p in params if p not in fields and p not in ("self", "args", "kwargs")]
        cfg = hydrated_dataclass(target, populate_full_signature=False, frozen=False,
                                 zen_meta={"__ctor_name__": target.__name__,
                                           "__supported_args__": "$".join(fields),
                                           "__missing_args__": "$".join(missing)},
                                 zen_partial=len(missing) > 0, hydra_convert="all")(klass)
        return _subcommand(cfg)
    return process if cls is None else process(cls)


def instantiate(config, **kwargs):
    """hydra-zen's ``instantiate`` with the config's arguments, then the partial with the
    ``kwargs`` it is missing; extra ``kwargs`` are ignored (``utils.py:321``)."""
    get_target(config)
    supported = set(getattr(config, "__supported_args__", "").split("$")) - {""}
    missing = set(getattr(config, "__missing_args__", "").split("$")) - {""}
    instance = zen_instantiate(config, **{k: v for k, v in kwargs.items() if k in supported})
    if is_partial_builds(config):
        instance = instance(**{k: v for k, v in kwargs.items() if k in missing})
    return instance


def _groups(tp: Any, prefix: str = "") -> list:
    """Subcommand groups (dotted, dashed) in tyro's order: unions of configs."""
    out = []
    for f in dataclasses.fields(tp):
        if f.name.startswith("_"):
            continue
        hint = typing.get_type_hints(tp, include_extras=True)[f.name]
        name = prefix + f.name.replace("_", "-")
        options = typing.get_args(hint) if typing.get_origin(hint) is Union else (hint,)
        inner = [typing.get_args(o)[0] if typing.get_origin(o) is Annotated else o for o in options]
        if len(inner) > 1 and all(dataclasses.is_dataclass(i) for i in inner):
            out.append(name)
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            out += _groups(inner[0], name + ".")
    return out


def _yaml_args(path: str) -> tuple[dict, list]:
    """``({group: subcommand}, ['--group.key=value' ...])`` of a Wisp YAML (``_tyro.py:128``)."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    subcommands, args = {}, []

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "constructor":
                    subcommands[name] = value.replace("_", "-")
                else:
                    walk(value, f"{name}.{key.replace('_', '-')}")
        elif isinstance(node, list):
            args.append([f"--{name}"] + [str(v) for v in node])
        else:
            args.append([f"--{name}={node}"])

    for key, value in data.items():
        walk(value, key.replace("_", "-"))
    return subcommands, args


def parse_config(config_type, yaml_arg: Optional[str] = '--config'):
    """CLI > YAML > defaults, parsed by tyro (see the module docstring)."""
    argv = list(sys.argv[1:])
    path = None
    if yaml_arg is not None and yaml_arg in argv:
        i = argv.index(yaml_arg)
        path = argv[i + 1]
        del argv[i:i + 2]
    cli_sub = {a.split(":")[0]: a for a in argv if ":" in a and not a.startswith("--")}
    cli_rest = _grouped([a for a in argv if a not in cli_sub.values()])
    yaml_sub, yaml_rest = _yaml_args(path) if path else ({}, [])
    given = {arg[0].split("=")[0] for arg in cli_rest if arg[0].startswith("--")}
    order = _groups(config_type)
    args_of: dict = {None: []}
    for arg in [a for a in yaml_rest if a[0].split("=")[0] not in given] + cli_rest:
        key = arg[0].split("=")[0][2:]
        group = max((g for g in order if key.startswith(g + ".")), key=len, default=None)
        args_of.setdefault(group, []).extend(arg)
    tokens = list(args_of[None])
    for group in order:
        sub = cli_sub.get(group) or (f"{group}:{yaml_sub[group]}" if group in yaml_sub else None)
        tokens += ([sub] if sub else []) + args_of.get(group, [])
    markers = tyro.conf.configure(tyro.conf.AvoidSubcommands, tyro.conf.FlagConversionOff,
                                  tyro.conf.SuppressFixed)
    return tyro.cli(markers(config_type), args=tokens)


def _grouped(argv: list) -> list:
    """Command-line tokens as ``[['--key', values...] or ['--key=value']]``."""
    out: list = []
    for token in argv:
        if token.startswith("--") or not out:
            out.append([token])
        else:
            out[-1].append(token)
    return out


def print_config(config, prefix=""):
    """As Wisp: one line per field, fields starting or ending with '_' hidden."""
    import logging
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not (field.name.startswith("_") or field.name.endswith("_")) and not dataclasses.is_dataclass(value):
            logging.getLogger(__name__).debug("%s%s: %s", prefix, field.name, value)


def write_config_to_yaml(config, path):
    with open(path, "w") as f:
        yaml.dump(dataclasses.asdict(config), f)
