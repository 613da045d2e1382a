"""The context model of the coder: integer tables, contexts, level coding, its section."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp_shacira.codec.container import CODER_EXACT, Reader
from wisp_shacira.codec.context import (CENTRE_ONE, MAX_CONTEXTS, DimModel, context_table,
                                        geometric_weights, level_contexts, normalise)
from wisp_shacira.codec.context_io import (coded_bits, decode_level, encode_level, fit_dim,
                                           fit_context_model, pack_context_model,
                                           unpack_context_model)
from wisp_shacira.entropy.context import grid_contexts


def _latents(rng: np.random.Generator, rows: int, dims: int, spread: float) -> np.ndarray:
    values = rng.laplace(0.0, spread, size=(rows, dims))
    return np.round(values).astype(np.int32)


@given(st.lists(st.integers(0, 1 << 32), min_size=1, max_size=300), st.integers(9, 24))
@settings(max_examples=60, deadline=None)
def test_normalise_gives_positive_integers_summing_to_the_precision(weights, precision) -> None:
    freqs = normalise(np.array(weights, dtype=np.int64), precision)
    assert freqs.min() >= 1 and int(freqs.astype(np.int64).sum()) == 1 << precision
    heavier = np.argmax(weights)
    assert freqs[heavier] == freqs.max()


def test_tables_follow_the_parameters() -> None:
    model = DimModel(-3, 5, share=192, ratio_pos=128, ratio_neg=64,
                     centres=(CENTRE_ONE // 4, 3 * CENTRE_ONE // 4))
    weights = geometric_weights(model, 0)
    assert weights[3] == (CENTRE_ONE // 4) << 16                       # the centre, symbol 0
    assert weights[5] == weights[4] * 128 >> 8                           # positive tail ratio
    assert weights[1] == weights[2] * 64 >> 8                            # negative tail ratio
    loose, tight = context_table(model, 0), context_table(model, 1)
    assert tight.freqs[3] > loose.freqs[3]
    assert loose.low == -3 and loose.num_symbols == 9


def test_centre_is_the_range_end_nearest_zero() -> None:
    assert DimModel(2, 6).centre == 2 and DimModel(-6, -2).centre == -2
    table = context_table(DimModel(2, 6, ratio_pos=100, centres=(60000,)), 0)
    assert table.freqs[0] == table.freqs.max()


@pytest.mark.parametrize("shape,dims", [((9, 7), 1), ((5, 4, 6), 2), ((), 3), ((11,), 2)])
def test_torch_contexts_equal_the_coder_contexts(shape, dims) -> None:
    rng = np.random.default_rng(0)
    rows = int(np.prod(shape)) if shape else 50
    values = _latents(rng, rows, dims, 0.8)
    ours = grid_contexts(torch.from_numpy(np.abs(values)).float(), shape).numpy()
    for dim in range(dims):
        assert np.array_equal(ours[:, dim], level_contexts(values, shape, dim, MAX_CONTEXTS))


def test_contexts_read_only_earlier_scanlines_and_dimensions() -> None:
    """Changing a latent changes contexts of later scanlines/dimensions only."""
    rng = np.random.default_rng(1)
    shape = (6, 5, 4)
    values = _latents(rng, 120, 2, 1.0)
    before = [level_contexts(values, shape, d, MAX_CONTEXTS) for d in range(2)]
    changed = values.copy()
    line = 13
    changed[line * 4:(line + 1) * 4, 1] += 5
    after = [level_contexts(changed, shape, d, MAX_CONTEXTS) for d in range(2)]
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1][:(line + 1) * 4],
                                                                   after[1][:(line + 1) * 4])


@pytest.mark.parametrize("shape,rows,dims,spread", [
    ((17, 17), 289, 1, 0.7), ((6, 6, 6), 216, 2, 1.5), ((), 500, 1, 0.4), ((), 64, 3, 3.0),
    ((5, 5), 25, 2, 0.0), ((), 0, 2, 1.0), ((), 1, 1, 2.0)])
def test_levels_round_trip_bit_exactly(shape, rows, dims, spread) -> None:
    rng = np.random.default_rng(rows + dims)
    values = _latents(rng, rows, dims, spread) if spread else np.zeros((rows, dims), np.int32)
    if dims > 1 and rows:
        values[:, -1] = 3                                    # a one-symbol dimension
    model = fit_context_model([values], [shape])
    data = encode_level(values, shape, model.dims[0], CODER_EXACT)
    back = decode_level(data, rows, shape, model.dims[0], CODER_EXACT)
    assert back.dtype == np.int32 and np.array_equal(back, values)


def test_coded_bits_match_the_written_bytes() -> None:
    rng = np.random.default_rng(5)
    values = _latents(rng, 64 * 64, 1, 0.6)
    shape = (64, 64)
    model = fit_context_model([values], [shape])
    data = encode_level(values, shape, model.dims[0], CODER_EXACT)
    bits = coded_bits(model.dims[0][0], values[:, 0], level_contexts(values, shape, 0, 4))
    assert bits / 8 <= len(data) <= bits / 8 + 8


def test_fit_uses_contexts_when_they_pay() -> None:
    """Latents that are zero wherever the previous scanline is zero: contexts help."""
    rng = np.random.default_rng(2)
    grid = np.zeros((64, 64), np.int32)
    grid[:, 20:40] = np.round(rng.laplace(0, 2.0, size=(64, 20)))
    values = grid.reshape(-1, 1)
    contexts = level_contexts(values, (64, 64), 0, MAX_CONTEXTS)
    model = fit_dim(values[:, 0], contexts)
    plain = fit_dim(values[:, 0], np.zeros_like(contexts))
    assert model.num_contexts > 1
    assert coded_bits(model, values[:, 0], contexts) < 0.8 * coded_bits(plain, values[:, 0],
                                                                         contexts)


def test_section_round_trip_and_bad_parameters() -> None:
    rng = np.random.default_rng(3)
    levels = [_latents(rng, 81, 2, 1.0), _latents(rng, 40, 2, 0.3)]
    model = fit_context_model(levels, [(9, 9), ()])
    data = pack_context_model(model)
    reader = Reader(data, "tables section")
    assert unpack_context_model(reader, [81, 40], 2, 16) == model
    reader.finish()
    with pytest.raises(ValueError, match="does not hold"):
        unpack_context_model(Reader(data, "t"), [80, 40], 2, 16)
    oblong = pack_context_model(fit_context_model([levels[0]], [(27, 3)]))
    with pytest.raises(ValueError, match="not a cube"):
        unpack_context_model(Reader(oblong, "t"), [81], 2, 16)
    bad = bytearray(data)
    first = model.dims[0][0]
    assert first.num_symbols > 1
    offset = 1 + 2 + 2          # shape: ndim, two sides; dim 0: low, count
    bad[offset + 3] = MAX_CONTEXTS + 1
    with pytest.raises(ValueError, match="contexts"):
        unpack_context_model(Reader(bytes(bad), "t"), [81, 40], 2, 16)
    bad = bytearray(data)
    bad[offset] = 0                                            # share 0
    with pytest.raises(ValueError, match="tail parameters"):
        unpack_context_model(Reader(bytes(bad), "t"), [81, 40], 2, 16)
    bad = bytearray(data)
    bad[offset + 4:offset + 6] = b"\x00\x00"                   # a centre mass of 0
    with pytest.raises(ValueError, match="centre masses"):
        unpack_context_model(Reader(bytes(bad), "t"), [81, 40], 2, 16)


def test_wrong_data_is_a_value_error_or_a_level_never_a_crash() -> None:
    """The coder cannot tell every wrong payload from a right one (the container's
    checksums do that); it must return a level of the right shape or raise ValueError."""
    rng = np.random.default_rng(4)
    values = _latents(rng, 400, 1, 1.0)
    model = fit_context_model([values], [(20, 20)])
    data = encode_level(values, (20, 20), model.dims[0], CODER_EXACT)
    for broken in (data[:-4], data + b"\x01\x00\x00\x00", data[:-1], b"", data[::-1]):
        try:
            decoded = decode_level(broken, 400, (20, 20), model.dims[0], CODER_EXACT)
        except ValueError:
            continue
        assert decoded.shape == (400, 1) and decoded.dtype == np.int32
    with pytest.raises(ValueError, match="unread data"):
        decode_level(b"\x01\x00\x00\x00", 5, (), (DimModel(2, 2),), CODER_EXACT)
