"""Base of every task's field: a :class:`ShaciraGrid` plus small MLP heads.

:class:`CompressedField` turns itself into the plain data of a ``.shac`` file
(:class:`~wisp_shacira.codec.model_io.ShacModel`) and back. The grid's decoder is
stored in float32 (it has ``D * F + F`` numbers); the heads' matrices and biases as
integers times a power-of-two step per tensor (``grid.weight_precision``; int8 rows and
float16 biases when it is None, as before format version 5;
:mod:`wisp_shacira.fields.weights`), and :meth:`CompressedField.round_weights` applies
that rounding in memory before export so that the exported model and the evaluated
model are the same.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from wisp_shacira.codec.model_io import ShacModel, encode_model
from wisp_shacira.errors import BitstreamError
from wisp_shacira.fields.weights import Storage, decode_tensor, encode_tensor, names_in_file
from wisp_shacira.grid.exact import ExactLinear
from wisp_shacira.grid.shacira_grid import ShaciraGrid


class MLP(nn.Sequential):
    """``in_dim -> [hidden] * num_layers -> out_dim`` with ReLU between layers; the
    layers are :class:`~wisp_shacira.grid.exact.ExactLinear` (machine-independent
    arithmetic when no gradient is recorded).

    Shapes: ``[N, in_dim] -> [N, out_dim]``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_layers: int, out_dim: int) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers):
            layers += [ExactLinear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        layers.append(ExactLinear(width, out_dim))
        super().__init__(*layers)


def smallest(encoded: dict[str, bytes]) -> tuple[bytes, str, dict[str, int]]:
    """``(bytes, coding, {coding: file size})`` of the smallest of ``encoded`` (the
    codings of :meth:`CompressedField.encode_codings`; ties go to the first)."""
    chosen = min(encoded, key=lambda coder: len(encoded[coder]))
    return encoded[chosen], chosen, {coder: len(data) for coder, data in encoded.items()}


class CompressedField(nn.Module):
    """A grid and its heads; subclasses define ``forward``.

    Attributes:
        grid: the compressed grid.
        heads: every other learned module that the file must store.
    """

    grid: ShaciraGrid
    heads: nn.Module

    def _stored(self) -> dict[str, tuple[nn.Parameter, Storage]]:
        precision = self.grid.config.weight_precision
        stored: dict[str, tuple[nn.Parameter, Storage]] = {
            f"heads.{k}": (p, "step" if precision is not None else "q8" if p.dim() == 2
                           else "f16")
            for k, p in self.heads.named_parameters()}
        if self.grid.config.compressed:
            for k, p in self.grid.decoder.named_parameters():
                stored[f"grid.decoder.{k}"] = (p, "f32")
        return stored

    def _file_tensors(self, name: str, param: nn.Parameter, kind: Storage
                      ) -> dict[str, np.ndarray]:
        return encode_tensor(name, param.detach().cpu().numpy(), kind,
                             self.grid.config.weight_precision or 0)

    @torch.no_grad()
    def round_weights(self) -> None:
        """Round stored weights to their file precision, in place, and harden the latents."""
        self.grid.harden()
        for name, (param, kind) in self._stored().items():
            value = decode_tensor(name, self._file_tensors(name, param, kind))
            param.copy_(torch.from_numpy(value))

    @torch.no_grad()
    def to_shac_model(self, config: dict, precision: int = 16, coder: str | None = None,
                      row_masks: list[np.ndarray | None] | None = None) -> ShacModel:
        """Plain-data model for :func:`~wisp_shacira.codec.model_io.write_shac`.

        Call :meth:`round_weights` first so that memory and file agree.

        Args:
            config: the file's CONFIG.
            precision: bits of the coder's probability tables.
            coder: how the integer latents are coded: ``factorized`` (a histogram per
                dimension), ``context`` (format version 4) or ``auto`` (whichever
                writes fewer bytes); None = the grid's ``latent_coder``.
            row_masks: per level the rows the file codes (None = all; see
                :attr:`~wisp_shacira.codec.model_io.ShacModel.row_masks`; the other
                rows must be zero); the tables or the context model are fitted to
                the coded rows, a masked level's context model treats it as unstructured.
        """
        if not self.grid.config.compressed:
            raise ValueError("an uncompressed grid cannot be exported to .shac")
        coder = coder or self.grid.config.latent_coder
        if coder == "auto":
            return self.to_shac_model(config, precision, self.encode_shac(
                config, precision, "auto", row_masks)[1], row_masks)
        weights: dict[str, np.ndarray] = {}
        for name, (param, kind) in self._stored().items():
            weights.update(self._file_tensors(name, param, kind))
        levels = self.grid.integer_latents()
        model = ShacModel(config=config, tables=[], weights=weights,
                          level_rows=[len(level) for level in levels], levels=levels,
                          row_masks=row_masks)
        if coder == "context":
            model.context = self.grid.context_model(precision, row_masks)
        else:
            model.tables = self.grid.frequency_tables(precision, row_masks)
        return model

    @torch.no_grad()
    def encode_shac(self, config: dict, precision: int = 16, coder: str | None = None,
                    row_masks: list[np.ndarray | None] | None = None
                    ) -> tuple[bytes, str, dict[str, int]]:
        """The ``.shac`` bytes of this field (``coder``, ``row_masks``: see
        :meth:`to_shac_model`).

        Returns:
            (file bytes, the coding they hold, ``{coding: file size}`` of every coding
            tried: both for ``auto``, which keeps the smaller).
        """
        grid = self.grid.config
        coders = grid.latent_codings() if coder is None else dataclasses.replace(
            grid, latent_coder=coder).latent_codings()
        return smallest(self.encode_codings(config, precision, coders, row_masks))

    @torch.no_grad()
    def encode_codings(self, config: dict, precision: int = 16,
                       coders: tuple[str, ...] | None = None,
                       row_masks: list[np.ndarray | None] | None = None) -> dict[str, bytes]:
        """The ``.shac`` bytes of this field in each of ``coders`` (``factorized``,
        ``context``; None = those ``grid.latent_coder`` tries), for a caller that needs
        more than the smallest (:func:`smallest` picks it)."""
        coders = self.grid.config.latent_codings() if coders is None else coders
        return {coder: encode_model(self.to_shac_model(config, precision, coder, row_masks),
                                    precision) for coder in coders}

    def check_shac_model(self, model: ShacModel, name: str = "<file>") -> dict[str, np.ndarray]:
        """The float32 weights of ``model`` after checking them against this field.

        Works on a field built on the ``meta`` device (nothing is allocated), so a
        decoder can check a file before building the real model.

        Raises:
            BitstreamError: the latent layout, the weight names or a shape differ.
        """
        if model.level_rows != list(self.grid.layout.table_sizes):
            raise BitstreamError(f"{name}: latent layout in the file ({model.level_rows} rows) "
                                 f"does not match its configuration "
                                 f"({list(self.grid.layout.table_sizes)})")
        if model.latent_dim != self.grid.config.latent_dim:
            raise BitstreamError(f"{name}: the tables code {model.latent_dim} latents per row, "
                                 f"the configuration says {self.grid.config.latent_dim}")
        self._check_entropy_model(model, name)
        values, used = {}, set()
        for key, (param, _) in self._stored().items():
            try:
                value = decode_tensor(key, model.weights)
            except ValueError as exc:
                raise BitstreamError(f"{name}: {exc}") from exc
            if tuple(param.shape) != value.shape:
                raise BitstreamError(f"{name}: weight {key}: shape {value.shape} in the file, "
                                     f"{tuple(param.shape)} expected")
            values[key] = value
            used.update(names_in_file(key, model.weights))
        extra = sorted(set(model.weights) - used)
        if extra:
            raise BitstreamError(f"{name}: weights in the file that the model does not have: "
                                 f"{extra[:5]}")
        return values

    def _check_entropy_model(self, model: ShacModel, name: str) -> None:
        """The file's latent coding must be one the configuration allows, on the grid's
        level shapes (``latent_coder: auto`` allows either; a level coded under a row
        mask is unstructured)."""
        in_file = "factorized" if model.context is None else "context"
        wanted = self.grid.config.latent_coder
        if wanted != "auto" and in_file != wanted:
            raise BitstreamError(f"{name}: the levels are coded with the {in_file} model, "
                                 f"the configuration says grid.latent_coder {wanted}")
        shapes = [shape if model.mask_of(level) is None else ()
                  for level, shape in enumerate(self.grid.layout.shapes)]
        if model.context is not None and list(model.context.shapes) != shapes:
            raise BitstreamError(f"{name}: level shapes {list(model.context.shapes)} in the "
                                 f"tables, {shapes} in the configuration")

    @torch.no_grad()
    def load_shac_model(self, model: ShacModel, name: str = "<file>") -> None:
        """Load weights and the decoded latent levels of ``model`` into this field."""
        values = self.check_shac_model(model, name)
        for key, (param, _) in self._stored().items():
            param.copy_(torch.from_numpy(values[key]))
        self.grid.load_levels(model.levels)
        self.grid.tau = None
