from __future__ import annotations

import numpy as np
import pytest

from wisp_shacira.fields.weights import (decode_tensor, encode_tensor, file_names, kinds_in_file,
                                         names_in_file, rounded)


def test_q8_rows_keep_their_scale_and_error_is_below_half_a_step() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 7)).astype(np.float32) * np.array([[1e-3], [1], [10], [0], [0.1]],
                                                                   dtype=np.float32)
    parts = encode_tensor("heads.0.weight", w, "q8")
    assert set(parts) == set(file_names("heads.0.weight", "q8"))
    assert parts["heads.0.weight"].dtype == np.int8 and np.abs(parts["heads.0.weight"]).max() <= 127
    back = decode_tensor("heads.0.weight", parts)
    step = parts["heads.0.weight.scale"].astype(np.float32)[:, None]
    assert np.all(np.abs(back - w) <= 0.5 * step + 1e-3 * np.abs(w))
    assert np.array_equal(back[3], np.zeros(7, np.float32))
    assert np.array_equal(rounded(w, "q8"), back)


@pytest.mark.parametrize("kind", ["f16", "f32"])
def test_float_kinds_round_trip(kind: str) -> None:
    w = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    parts = encode_tensor("b", w, kind)
    assert list(parts) == ["b"] and names_in_file("b", parts) == ["b"]
    assert np.array_equal(decode_tensor("b", parts), rounded(w, kind))


@pytest.mark.parametrize("bits", [0, 2, 4, 8])
@pytest.mark.parametrize("shape", [(6, 5), (7,), ()])
def test_step_storage_is_exact_and_its_error_below_half_a_step(bits: int, shape: tuple) -> None:
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal(shape) * 0.3).astype(np.float32)
    parts = encode_tensor("heads.2.weight", w, "step", bits)
    assert names_in_file("heads.2.weight", parts) == file_names("heads.2.weight", "step")
    values, exp = parts["heads.2.weight"], int(parts["heads.2.weight.exp"][0])
    assert values.dtype == np.int32 and values.shape == w.shape
    rms = np.sqrt(np.mean(w.astype(np.float64) ** 2))
    assert shape == () or 2.0 ** (exp + bits) <= rms < 2.0 ** (exp + bits + 1)
    back = decode_tensor("heads.2.weight", parts)
    assert np.array_equal(back, values.astype(np.float64) * 2.0**exp)
    assert np.all(np.abs(back - w) <= 2.0 ** (exp - 1))
    assert np.array_equal(rounded(w, "step", bits), back)
    assert np.array_equal(rounded(back, "step", bits), back), "rounding twice changes nothing"


def test_step_storage_of_zeros_and_of_an_outlier() -> None:
    zeros = encode_tensor("w", np.zeros((2, 3), np.float32), "step", 4)
    assert int(zeros["w.exp"][0]) == 0 and not zeros["w"].any()
    outlier = np.zeros(1000, np.float32)
    outlier[0] = 1000.3
    with pytest.raises(ValueError, match="outlier"):
        encode_tensor("w", outlier, "step", 16)


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        encode_tensor("w", np.array([[np.nan]], np.float32), "q8")
    with pytest.raises(ValueError, match="matrix"):
        encode_tensor("w", np.zeros(3, np.float32), "q8")
    with pytest.raises(ValueError, match="0..16"):
        encode_tensor("w", np.zeros(3, np.float32), "step", 17)
    parts = encode_tensor("w", np.ones((2, 2), np.float32), "q8")
    parts["w.scale"] = parts["w.scale"][:1]
    with pytest.raises(ValueError, match="unexpected"):
        decode_tensor("w", parts)
    parts = encode_tensor("w", np.ones((2, 2), np.float32), "step")
    for bad in (np.array([1], np.int32), np.array([1, 2], np.int8), np.array([-127], np.int8)):
        with pytest.raises(ValueError, match="step"):
            decode_tensor("w", {**parts, "w.exp": bad})
    with pytest.raises(ValueError, match="2\\^20"):
        decode_tensor("w", {**parts, "w": np.full((2, 2), 1 << 20, np.int32)})
    with pytest.raises(ValueError, match="missing"):
        decode_tensor("v", parts)


def test_kinds_in_file_names_every_storage_present() -> None:
    rng = np.random.default_rng(0)
    tensors = {**encode_tensor("a", rng.normal(size=(3, 4)), "step"),
               **encode_tensor("b", rng.normal(size=(3, 4)), "q8"),
               **encode_tensor("c", rng.normal(size=4), "f16")}
    assert kinds_in_file(tensors) == {"step", "q8", "f16"}
    assert kinds_in_file(encode_tensor("d", rng.normal(size=2), "f32")) == {"f32"}
    assert kinds_in_file({}) == set()
