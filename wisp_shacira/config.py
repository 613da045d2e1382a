"""Typed configuration: dataclasses loaded from YAML with command-line overrides.

Rules: unknown keys and duplicate keys are errors (never silently ignored), values
are type-checked against the dataclass annotations (an int is accepted where a
float is expected), and a section may define ``check()`` to reject out-of-range
values. Overrides use dotted paths: ``--trainer.iterations 2000`` or
``--dataset.path=img.png``; the value is parsed as YAML.

Example:
    >>> parse_overrides(["--trainer.iterations", "2000", "--dataset.path=img.png"])
    {'trainer': {'iterations': 2000}, 'dataset': {'path': 'img.png'}}
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from wisp_shacira.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError(f"duplicate config key {key!r} (line {line})")
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, rejecting duplicate keys."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - strict SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})".replace("\n", " ")) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def parse_overrides(args: list[str]) -> dict:
    """Turn ``["--a.b", "1", "--c=x"]`` into the nested dict ``{"a": {"b": 1}, "c": "x"}``."""
    out: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(f"expected --key value, got {arg!r}")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"option {arg} needs a value")
            key, raw = arg[2:], args[i + 1]
            i += 2
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.replace("-", "_").split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"option --{key} conflicts with another option")
        if parts[-1] in node:
            raise ConfigError(f"option --{key} given twice")
        node[parts[-1]] = value
    return out


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; ``override`` wins."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build_config(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        fixed = origin is tuple and len(args) > 1 and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        items = [_coerce(v, args[i] if fixed else (args[0] if args else Any), f"{where}[{i}]")
                 for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return _coerce_scalar(value, hint, where)


def _coerce_scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {value!r} is not a finite number")
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise ConfigError(f"{where}: unsupported config type {hint}")
    raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")


def build_config(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, strictly (see module doc)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} "
                          f"({hint}known: {', '.join(sorted(names))})")
    required = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in data
                and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"missing config key {prefix}{required[0]}")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(value, hints[name], path)
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check()
    return obj


def load_config(cls: type, yaml_path: str | Path | None, overrides: list[str]) -> Any:
    """Defaults <- YAML file <- command-line overrides, built into ``cls``."""
    data = load_yaml(yaml_path) if yaml_path is not None else {}
    return build_config(cls, merge(data, parse_overrides(overrides)))


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def to_dict(obj: Any) -> dict:
    """A dataclass config as a plain (JSON/YAML-serialisable) dict."""
    return dataclasses.asdict(obj)


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    """One config key: dotted name, type, value (the default, or a config's) and meaning."""

    key: str
    type: str
    value: Any
    meaning: str


def _attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` entries (continuation lines joined) of the docstrings of ``cls``
    and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        inside, indent, name = False, 0, ""
        for line in (klass.__doc__ or "").splitlines():
            stripped, current = line.strip(), len(line) - len(line.lstrip())
            if stripped == "Attributes:":
                inside, indent = True, current + 4
            elif inside and stripped and current < indent:
                inside = False
            elif inside and stripped and current == indent and ":" in stripped:
                name, text = stripped.split(":", 1)
                name = name.strip()
                docs[name] = text.strip()
            elif inside and stripped and name:
                docs[name] += " " + stripped
    return {k: v.replace("``", "") for k, v in docs.items()}


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin in (tuple, list):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"[{inner}{', ...' if Ellipsis in args or origin is list else ''}]"
    return getattr(hint, "__name__", str(hint))


def describe_config(cls: type, values: Any = None, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key of dataclass ``cls`` (sections flattened to dotted names), with its
    type, its value in ``values`` (an instance; default: the class defaults) and the
    first line of its documentation."""
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls)
    values = cls() if values is None else values
    out: list[KeyDoc] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value, hint = getattr(values, f.name), hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += describe_config(hint, value, f"{prefix}{f.name}.")
        else:
            out.append(KeyDoc(f"{prefix}{f.name}", _type_name(hint), value,
                              docs.get(f.name, "")))
    return out


def leaf_keys(data: dict, prefix: str = "") -> list[str]:
    """Dotted names of the non-mapping values of a nested dict."""
    keys: list[str] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        keys += leaf_keys(value, f"{name}.") if isinstance(value, dict) else [name]
    return keys
