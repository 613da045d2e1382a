"""The file's latent coding (``grid.latent_coder``): auto writes the smaller of the two
codings, an explicit choice is kept, and a decoder holds a file to an explicit choice; the
heads' storage (``grid.weight_precision``): what the decoder rebuilds is what was
evaluated, and a coarser step writes a smaller file."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wisp_shacira.codec.model_io import decode_model, encode_model
from wisp_shacira.errors import BitstreamError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig

NEF = ImageNefConfig(hidden_dim=8)


def _field(grid: GridConfig, zero_dense: bool) -> ImageField:
    """Seeded random latents; with ``zero_dense`` the top half of every dense level is zero
    (a structure only the context coding sees), else i.i.d. latents everywhere."""
    torch.manual_seed(0)
    field = ImageField(grid, NEF, channels=3)
    layout = field.grid.layout
    with torch.no_grad():
        field.grid.latents.copy_(torch.randint(-2, 3, field.grid.latents.shape).float())
        for level, dense in enumerate(layout.dense):
            if zero_dense and dense:
                start, end = layout.offsets[level], layout.offsets[level + 1]
                field.grid.latents[start:(start + end) // 2] = 0
    field.round_weights()
    return field


GRID = GridConfig(num_levels=4, min_res=8, max_res=64, log2_table_size=12, latent_dim=2)


@pytest.mark.parametrize("zero_dense, smaller", [(True, "context"), (False, "factorized")])
def test_auto_writes_the_smaller_coding(zero_dense: bool, smaller: str) -> None:
    field = _field(GRID, zero_dense)
    sizes = {name: len(encode_model(field.to_shac_model({"task": "image"}, coder=name)))
             for name in ("factorized", "context")}
    auto = field.to_shac_model({"task": "image"})
    assert min(sizes, key=sizes.get) == smaller and sizes["factorized"] != sizes["context"]
    assert len(encode_model(auto)) == min(sizes.values())
    assert (auto.context is not None) == (smaller == "context")
    data, chosen, tried = field.encode_shac({"task": "image"})
    assert (chosen, tried, len(data)) == (smaller, sizes, min(sizes.values()))


@pytest.mark.parametrize("coder", ["factorized", "context"])
def test_an_explicit_coder_is_kept_and_required_of_the_file(coder: str) -> None:
    grid = dataclasses.replace(GRID, latent_coder=coder)
    field = _field(grid, zero_dense=coder == "factorized")       # auto would pick the other
    model = decode_model(encode_model(field.to_shac_model({"task": "image"})))
    assert (model.context is not None) == (coder == "context")
    field.check_shac_model(model)
    other = "context" if coder == "factorized" else "factorized"
    strict = ImageField(dataclasses.replace(GRID, latent_coder=other), NEF, channels=3)
    with pytest.raises(BitstreamError, match=f"coded with the {coder} model.*latent_coder {other}"):
        strict.check_shac_model(model, "f.shac")
    ImageField(GRID, NEF, channels=3).check_shac_model(model)      # auto accepts either


@pytest.mark.parametrize("precision, suffix, dtype", [(None, ".scale", np.int8),
                                                      (4, ".exp", np.int32),
                                                      (0, ".exp", np.int32)])
def test_the_decoder_rebuilds_the_rounded_heads(precision, suffix, dtype) -> None:
    grid = dataclasses.replace(GRID, weight_precision=precision)
    field = _field(grid, zero_dense=False)
    model = decode_model(encode_model(field.to_shac_model({"task": "image"})))
    assert model.weights["heads.0.weight"].dtype == dtype
    assert "heads.0.weight" + suffix in model.weights
    back = ImageField(grid, NEF, channels=3)
    back.load_shac_model(model)
    for (name, a), (_, b) in zip(field.state_dict().items(), back.state_dict().items()):
        if not name.startswith("grid.prior"):
            assert torch.equal(a, b), name


def test_a_coarser_weight_step_writes_fewer_bytes() -> None:
    sizes = {}
    for precision in (None, 8, 4, 2):
        field = _field(dataclasses.replace(GRID, weight_precision=precision), zero_dense=False)
        sizes[precision] = len(field.encode_shac({"task": "image"})[0])
    assert sizes[8] > sizes[4] > sizes[2] and sizes[None] > sizes[4]
