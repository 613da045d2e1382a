"""The CONFIG and WEIGHTS sections of format version 5 (and the raw layout before it)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from wisp_shacira.codec.container import WEIGHTS_VERSION, encode_varint
from wisp_shacira.codec.context_io import pack_dim
from wisp_shacira.codec.head_io import (fit_law, pack_config, pack_weights, read_config,
                                        split_coded, unpack_weights)

CONFIG = {"task": "image", "grid": {"num_levels": 24, "min_res": 16, "max_res": 512,
                                    "log2_table_size": 13, "weight_precision": 4},
          "nef": {"hidden_dim": 32, "num_layers": 2},
          "image": {"name": "kodim07", "height": 512, "width": 768, "channels": 3,
                    "bit_depth": 8}}


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"grid.decoder.weight": rng.standard_normal((1, 1)).astype(np.float32),
            "heads.0.weight": np.round(rng.laplace(0, 6, (32, 24))).astype(np.int32),
            "heads.0.weight.exp": np.array([-9], np.int8),
            "heads.0.bias": np.full(32, -3, np.int32),                 # one symbol
            "heads.2.weight": np.zeros((0, 4), np.int32),               # empty
            "heads.2.bias": np.array([5], np.int32),
            "legacy.weight": rng.integers(-127, 128, (3, 5)).astype(np.int8),
            "legacy.weight.scale": rng.random(3).astype(np.float16)}


@pytest.mark.parametrize("version", [3, WEIGHTS_VERSION])
def test_weights_round_trip_with_their_types_and_shapes(version: int) -> None:
    weights = _weights(np.random.default_rng(0))
    back = unpack_weights(pack_weights(weights, version), version)
    assert list(back) == list(weights)
    for name, array in weights.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape, name
        assert np.array_equal(back[name], array), name


def test_version_5_keeps_scalars() -> None:
    weights = {"s": np.array(5, np.int32), "t": np.array(0.5, np.float32)}
    back = unpack_weights(pack_weights(weights, WEIGHTS_VERSION), WEIGHTS_VERSION)
    assert {k: (v.shape, v.item()) for k, v in back.items()} == {"s": ((), 5), "t": ((), 0.5)}


def test_version_5_codes_the_integers_near_their_entropy() -> None:
    rng = np.random.default_rng(1)
    values = np.round(rng.laplace(0, 6, (64, 64))).astype(np.int32)
    coded = len(pack_weights({"w": values}, WEIGHTS_VERSION))
    _, counts = np.unique(values, return_counts=True)
    entropy = -(counts * np.log2(counts / values.size)).sum() / 8
    assert entropy < coded < 1.04 * entropy + 40
    assert coded < 0.6 * len(pack_weights({"w": values}, 3))


def test_version_5_config_uses_the_preset_dictionary() -> None:
    small, plain = pack_config(CONFIG, WEIGHTS_VERSION), pack_config(CONFIG, 3)
    assert len(small) < 0.6 * len(plain)
    assert read_config(small, WEIGHTS_VERSION) == CONFIG == read_config(plain, 3)
    with pytest.raises(zlib.error):
        read_config(small, 3)


def _list_and_coded(weights: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    packed, coded = split_coded(pack_weights(weights, WEIGHTS_VERSION))
    return zlib.decompress(packed), coded


def _assemble(listing: bytes, coded: bytes) -> bytes:
    packed = zlib.compress(listing, 9)
    return encode_varint(len(packed)) + packed + coded


def _int_weight(name: str, shape: tuple[int, ...], law: bytes) -> bytes:
    raw = name.encode()
    return (encode_varint(len(raw)) + raw + bytes([2, len(shape)])
            + b"".join(encode_varint(s) for s in shape) + law)


def test_damaged_version_5_weights_are_refused_with_the_reason() -> None:
    weights = {"w": np.round(np.random.default_rng(2).laplace(0, 4, (8, 8))).astype(np.int32)}
    listing, coded = _list_and_coded(weights)
    v = WEIGHTS_VERSION
    with pytest.raises(ValueError, match="entropy decoding|unread"):
        unpack_weights(_assemble(listing, coded[:-4]), v)
    with pytest.raises(ValueError, match="trailing"):
        unpack_weights(_assemble(listing + b"\0", coded), v)
    with pytest.raises(ValueError, match="past the end"):
        unpack_weights(_assemble(listing[:-3], coded), v)
    two_contexts = encode_varint(1) + _int_weight("w", (8, 8), pack_dim(
        fit_law(weights["w"]))[:-3] + bytes([2]) + b"\x00\x80\x00\x80")
    with pytest.raises(ValueError, match="2 contexts"):
        unpack_weights(_assemble(two_contexts, coded), v)
    bad_tail = encode_varint(1) + _int_weight("w", (8, 8), encode_varint(0) + encode_varint(3)
                                             + bytes([0, 0, 0, 1]) + b"\x00\x80")
    with pytest.raises(ValueError, match="tail parameters"):
        unpack_weights(_assemble(bad_tail, coded), v)
    with pytest.raises(zlib.error):
        unpack_weights(encode_varint(3) + b"abc", v)


def test_huge_declared_weights_are_refused_before_decoding() -> None:
    law = encode_varint(0) + encode_varint(2) + bytes([128, 0, 0, 1]) + b"\x00\x80"
    many = encode_varint(2) + _int_weight("a", (1 << 23,), law) + _int_weight(
        "b", (1 << 23, 2), law)
    with pytest.raises(ValueError, match="limits"):
        unpack_weights(_assemble(many, b""), WEIGHTS_VERSION)
    wide = encode_varint(0) + encode_varint((1 << 16) - 1) + bytes([128, 0, 0, 1]) + b"\x00\x80"
    symbols = encode_varint(17) + b"".join(_int_weight(f"w{i}", (1,), wide) for i in range(17))
    with pytest.raises(ValueError, match="symbols"):
        unpack_weights(_assemble(symbols, b""), WEIGHTS_VERSION)
    bomb = zlib.compress(b"\0" * ((1 << 26) + 1), 9)
    with pytest.raises(ValueError, match="not one zlib stream"):
        unpack_weights(encode_varint(len(bomb)) + bomb, WEIGHTS_VERSION)


def test_a_weight_whose_integers_no_table_can_code_is_refused_at_writing() -> None:
    with pytest.raises(ValueError, match="lower grid.weight_precision"):
        pack_weights({"w": np.array([0, 1 << 17], np.int32)}, WEIGHTS_VERSION)
