"""Seeded mutations of valid ``.shac`` files, for fuzzing the decoder past its checksums.

Every mutation edits the *content* of a file (a section payload, the CONFIG JSON, the
version-5 weight list inside its zlib stream, the section list) and then packs it again
with correct checksums, so the decoder's parsing and validation are exercised rather
than the CRC alone. A few mutations keep
the raw bytes (truncation, splicing encoded sections) to exercise the container.

>>> import random
>>> from wisp_shacira.codec.container import pack_sections
>>> seed = pack_sections([(1, b"x"), (2, b"yy")])
>>> name, data = mutate(seed, random.Random(0), [seed])
>>> isinstance(name, str) and isinstance(data, bytes)
True
"""
from __future__ import annotations

import math
import random
import zlib
from typing import Any, Callable

from wisp_shacira.codec.container import (WEIGHTS_VERSION, Container, encode_varint,
                                          pack_sections, unpack_sections)
from wisp_shacira.codec.head_io import pack_config, read_config, split_coded

HOSTILE_VALUES: tuple[Any, ...] = (
    0, -1, 1, 2, 3, 7, 255, 65536, 2**31, 2**40, 10**6, 10**9, -(10**9), 1.5, 1e-30,
    math.nan, math.inf, -math.inf, "", "x", None, True, False, [], {}, [1, 2], [1.0, 2.0],
)
"""Values a mutated configuration leaf takes (NaN/inf are written as JSON extensions)."""

Sections = list[tuple[int, bytes]]


def _sections(container: Container) -> Sections:
    return [(s.kind, s.payload) for s in container.sections]


def _pack(container: Container, sections: Sections) -> bytes:
    return pack_sections(sections, container.version, container.coder)


def _edit_payload(sections: Sections, rng: random.Random,
                  edit: Callable[[bytearray, random.Random], None]) -> Sections:
    index = rng.randrange(len(sections))
    payload = bytearray(sections[index][1])
    edit(payload, rng)
    sections[index] = (sections[index][0], bytes(payload))
    return sections


def _flip_bits(payload: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        if payload:
            payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)


def _set_byte(payload: bytearray, rng: random.Random) -> None:
    if payload:
        payload[rng.randrange(len(payload))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF,
                                                           rng.randrange(256)))


def _resize(payload: bytearray, rng: random.Random) -> None:
    if payload and rng.random() < 0.5:
        del payload[rng.randrange(len(payload)):]
    else:
        payload.extend(rng.randbytes(rng.randint(1, 8)))


def _nan_bytes(payload: bytearray, rng: random.Random) -> None:
    pattern = rng.choice((b"\x00\x7e", b"\x00\x7c", b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f"))
    if len(payload) >= len(pattern):
        pos = rng.randrange(0, len(payload) - len(pattern) + 1)
        payload[pos:pos + len(pattern)] = pattern


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [path] + [p for key, value in node.items() for p in _leaves(value, path + (key,))]
    if isinstance(node, list):
        return [path] + [p for i, value in enumerate(node) for p in _leaves(value, path + (i,))]
    return [path]


def _edit_config(payload: bytes, rng: random.Random, version: int) -> bytes:
    """Replace, delete or add one entry anywhere in the CONFIG JSON."""
    config = read_config(payload, version)
    path = rng.choice(_leaves(config))
    if not path:
        config = rng.choice(([], "x", None, {"task": ["image"]}, {}))
    else:
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.75:
            parent[path[-1]] = rng.choice(HOSTILE_VALUES)
        elif action < 0.9 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(rng.choice(HOSTILE_VALUES))
        else:
            parent["unexpected_key"] = rng.choice(HOSTILE_VALUES)
    return pack_config(config, version)


def _edit_weight_list(payload: bytes, rng: random.Random, version: int) -> bytes:
    """A version-5 WEIGHTS payload whose compressed tensor list (names, shapes, laws, raw
    values) is damaged inside the zlib stream; the whole payload for older versions."""
    edit = rng.choice((_flip_bits, _set_byte, _resize))
    if version < WEIGHTS_VERSION:
        damaged = bytearray(payload)
        edit(damaged, rng)
        return bytes(damaged)
    packed, coded = split_coded(payload)
    listing = bytearray(zlib.decompress(packed))
    edit(listing, rng)
    packed = zlib.compress(bytes(listing), 9)
    return encode_varint(len(packed)) + packed + coded


def _structural(sections: Sections, rng: random.Random, donors: list[Container]) -> Sections:
    choice = rng.randrange(5)
    index = rng.randrange(len(sections))
    if choice == 0:
        del sections[index]
    elif choice == 1:
        sections.insert(index, sections[index])
    elif choice == 2:
        other = rng.randrange(len(sections))
        sections[index], sections[other] = sections[other], sections[index]
    elif choice == 3:
        sections.append(sections[-1])
    else:
        donor = _sections(rng.choice(donors))
        pick = rng.randrange(len(donor))
        sections[min(pick, len(sections) - 1)] = donor[pick]
    return sections


def _raw(data: bytes, rng: random.Random, donors: list[Container], raw_donors: list[bytes]) -> bytes:
    """Byte-level damage without fixing checksums: truncation, trailing or spliced bytes."""
    choice = rng.randrange(3)
    if choice == 0:
        return data[:rng.randrange(len(data))]
    if choice == 1:
        return data + rng.randbytes(rng.randint(1, 16))
    donor_index = rng.randrange(len(donors))
    donor, donor_bytes = donors[donor_index], raw_donors[donor_index]
    return data + donor_bytes[donor.sections[-1].start:]


def mutate(data: bytes, rng: random.Random, donors: list[bytes]) -> tuple[str, bytes]:
    """One seeded mutation of the valid file ``data``.

    Args:
        donors: valid files whose sections may be spliced in (``data`` may be one).
    Returns:
        (name of the mutation, mutated bytes).
    """
    container = unpack_sections(data)
    donor_containers = [unpack_sections(d) for d in donors]
    sections = _sections(container)
    kind = rng.choices(["bits", "byte", "resize", "nan", "config", "weights", "structure",
                        "raw"], weights=[3, 3, 1, 1, 4, 2, 2, 1])[0]
    edits = {"bits": _flip_bits, "byte": _set_byte, "resize": _resize, "nan": _nan_bytes}
    if kind in edits:
        return kind, _pack(container, _edit_payload(sections, rng, edits[kind]))
    if kind == "config":
        sections[0] = (sections[0][0], _edit_config(sections[0][1], rng, container.version))
        return kind, _pack(container, sections)
    if kind == "weights":
        sections[2] = (sections[2][0], _edit_weight_list(sections[2][1], rng, container.version))
        return kind, _pack(container, sections)
    if kind == "structure":
        return kind, _pack(container, _structural(sections, rng, donor_containers))
    return kind, _raw(data, rng, donor_containers, donors)
