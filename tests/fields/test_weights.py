from __future__ import annotations

import numpy as np
import pytest

from wisp_shacira.fields.weights import (decode_tensor, encode_tensor, file_names, rounded,
                                         stored_bytes)


def test_q8_rows_keep_their_scale_and_error_is_below_half_a_step() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 7)).astype(np.float32) * np.array([[1e-3], [1], [10], [0], [0.1]],
                                                                   dtype=np.float32)
    parts = encode_tensor("heads.0.weight", w, "q8")
    assert set(parts) == set(file_names("heads.0.weight", "q8"))
    assert parts["heads.0.weight"].dtype == np.int8 and np.abs(parts["heads.0.weight"]).max() <= 127
    back = decode_tensor("heads.0.weight", parts, "q8")
    step = parts["heads.0.weight.scale"].astype(np.float32)[:, None]
    assert np.all(np.abs(back - w) <= 0.5 * step + 1e-3 * np.abs(w))
    assert np.array_equal(back[3], np.zeros(7, np.float32))
    assert np.array_equal(rounded(w, "q8"), back)
    assert stored_bytes(w.shape, "q8") == sum(a.nbytes for a in parts.values())


@pytest.mark.parametrize("kind", ["f16", "f32"])
def test_float_kinds_round_trip(kind: str) -> None:
    w = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    parts = encode_tensor("b", w, kind)
    assert stored_bytes(w.shape, kind) == parts["b"].nbytes
    assert np.array_equal(decode_tensor("b", parts, kind), rounded(w, kind))


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        encode_tensor("w", np.array([[np.nan]], np.float32), "q8")
    with pytest.raises(ValueError, match="matrix"):
        encode_tensor("w", np.zeros(3, np.float32), "q8")
    parts = encode_tensor("w", np.ones((2, 2), np.float32), "q8")
    parts["w.scale"] = parts["w.scale"][:1]
    with pytest.raises(ValueError, match="unexpected"):
        decode_tensor("w", parts, "q8")
