"""``ShaciraGrid``: a multi-resolution hash grid whose tables are integer latents.

Per level ``l`` the grid holds latents ``Q_hat_l: [T_l, D]`` (continuous proxies of
integers). A forward pass quantises them (annealed soft rounding, then
straight-through rounding), maps them through one shared linear decoder ``D -> F``
and interpolates the decoded features at the query coordinates. A factorised
prior per latent dimension gives the rate term. With ``compressed=False`` the same
class is a plain float hash grid (the Instant-NGP baseline: no latents, no rate).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from wisp_shacira.codec.context import ContextModel
from wisp_shacira.codec.context_io import fit_context_model
from wisp_shacira.codec.model_io import coded_rows
from wisp_shacira.codec.tables import FrequencyTable, histogram_table
from wisp_shacira.config import require
from wisp_shacira.entropy.context import ContextPrior
from wisp_shacira.entropy.prior import FactorizedPrior
from wisp_shacira.grid.exact import ExactLinear
from wisp_shacira.grid.fast import EncodingPlan, encode
from wisp_shacira.grid.gathered import encode_gathered, worth_gathering
from wisp_shacira.grid.hashing import GridLayout, make_layout
from wisp_shacira.grid.latents_first import StepLatents, encode_latents_first, latents_first_pays
from wisp_shacira.grid.quantize import quantize


@dataclass
class GridConfig:
    """Hyper-parameters of :class:`ShaciraGrid` (YAML section ``grid``).

    Attributes:
        num_levels: L, the number of levels (the finest LOD).
        min_res: resolution of the coarsest level.
        max_res: resolution of the finest level.
        log2_table_size: log2 of T, the maximum rows per level.
        feature_dim: F, features per level after decoding.
        latent_dim: D, integer latents per row.
        latent_init: latents start uniform in ``[-latent_init, latent_init]``.
        compressed: False gives a plain float grid (no quantisation, no rate).
        prior_init_scale: initial spread of the learned probability models.
        decoder_init: standard deviation of the decoder weights at the start, with zero
            bias (features start near zero, as a float grid's do); None = PyTorch's
            default (uniform in ``+-1/sqrt(D)``, also for the bias).
        latent_step: when set, the decoder starts as this step times a unit matrix
            (feature ``f`` reads latent ``f mod D``) with zero bias, so one integer latent
            unit is ``latent_step`` in feature space: a fixed quantisation step instead
            of one the decoder learns. The latents' learning rate is then given in
            feature units, like a float table's (see :meth:`ShaciraGrid.latent_lr`). Pair
            it with a small ``trainer.lr_decoder`` (keeps the step) and ``latent_dim`` =
            ``feature_dim``. Excludes ``decoder_init``.
        entropy_model: ``factorized`` (the paper's: one learned law per latent dimension
            for the whole grid; the file codes each dimension with its histogram) or
            ``context`` (a law per level and latent dimension whose zero probability
            depends on already decoded neighbours), the law the rate term of training uses.
        latent_coder: how the file codes the integer latents, whatever the training
            prior: ``auto`` (the default) writes whichever of the two codings gives the
            smaller file, ``factorized`` their histograms (format version 3),
            ``context`` the context model refitted to them (format version 4). Both
            decode exactly; the context coding's entropy decoding is slower (a Kodak
            file: 44 ms against 8 ms).
        weight_precision: how finely the file stores the MLP heads (matrices and
            biases): each tensor as integers times the step ``2^(floor(log2 rms) -
            weight_precision)``, entropy-coded (format version 5); 0..16. 4 cost
            -0.01 dB on Kodak and coded the heads in 1.5 KB instead of 2.4 KB. None:
            int8 rows with a float16 scale and float16 biases, as before version 5.
    """

    num_levels: int = 24
    min_res: int = 16
    max_res: int = 512
    log2_table_size: int = 11
    feature_dim: int = 1
    latent_dim: int = 1
    latent_init: float = 0.1
    compressed: bool = True
    prior_init_scale: float = 10.0
    decoder_init: float | None = None
    latent_step: float | None = None
    entropy_model: Literal["factorized", "context"] = "factorized"
    latent_coder: Literal["auto", "factorized", "context"] = "auto"
    weight_precision: int | None = 4

    def latent_codings(self) -> tuple[str, ...]:
        """The codings an export tries (``latent_coder``: both for ``auto``, which keeps
        the smaller file)."""
        return ("factorized", "context") if self.latent_coder == "auto" else (self.latent_coder,)

    def check(self) -> None:
        require(self.num_levels >= 1, f"grid.num_levels must be >= 1, got {self.num_levels}")
        require(1 <= self.min_res <= self.max_res,
                f"need 1 <= grid.min_res <= grid.max_res, got {self.min_res}, {self.max_res}")
        require(1 <= self.log2_table_size <= 30,
                f"grid.log2_table_size must be in 1..30, got {self.log2_table_size}")
        require(self.feature_dim >= 1 and self.latent_dim >= 1,
                "grid.feature_dim and grid.latent_dim must be >= 1")
        require(self.latent_init > 0 and 1e-3 <= self.prior_init_scale <= 1e6,
                "grid.latent_init must be > 0 and grid.prior_init_scale in 1e-3..1e6")
        require(self.decoder_init is None or self.decoder_init > 0,
                f"grid.decoder_init must be > 0 (or null), got {self.decoder_init}")
        require(self.latent_step is None or self.latent_step > 0,
                f"grid.latent_step must be > 0 (or null), got {self.latent_step}")
        require(self.weight_precision is None or 0 <= self.weight_precision <= 16,
                f"grid.weight_precision must be 0..16 (or null), got {self.weight_precision}")
        require(self.latent_step is None or self.decoder_init is None,
                "grid.latent_step and grid.decoder_init exclude each other; set one")


_BITS_CHUNK = 1 << 20
"""Rows scored at once by :meth:`ShaciraGrid.model_bits` (bounded memory on large tables)."""


def check_lod(lod: int | None, num_levels: int) -> None:
    """Raise ``ValueError`` unless ``lod`` (levels used) is None or in ``1..num_levels``."""
    if lod is not None and not 1 <= lod <= num_levels:
        raise ValueError(f"lod {lod} is out of range 1..{num_levels} (levels used)")


class ShaciraGrid(nn.Module):
    """Compressed multi-resolution grid over ``[0, 1]^dim``.

    Args:
        dim: input dimension d (2 for images, 3 for video and scenes).
        config: grid hyper-parameters.
    """

    def __init__(self, dim: int, config: GridConfig) -> None:
        super().__init__()
        self.dim = dim
        self.config = config
        self.layout: GridLayout = make_layout(dim, config.min_res, config.max_res,
                                              config.num_levels, config.log2_table_size)
        rows = self.layout.total_rows
        if config.compressed:
            init = config.latent_init
            self.latents = nn.Parameter(torch.empty(rows, config.latent_dim).uniform_(-init, init))
            self.decoder = ExactLinear(config.latent_dim, config.feature_dim)
            self._init_decoder(config)
            self.prior = self._make_prior(config)
        else:
            self.latents = nn.Parameter(torch.empty(rows, config.feature_dim).uniform_(-1e-4, 1e-4))

    def _make_prior(self, config: GridConfig) -> FactorizedPrior | ContextPrior:
        """The entropy model. It takes the same random draws either way (the factorised
        prior's initial biases), so the rest of a field starts from the same random
        state with either model and the two compare on equal terms."""
        factorized = FactorizedPrior(config.latent_dim, init_scale=config.prior_init_scale)
        if config.entropy_model == "context":
            return ContextPrior(list(self.layout.shapes), list(self.layout.table_sizes),
                                config.latent_dim)
        return factorized

    @torch.no_grad()
    def _init_decoder(self, config: GridConfig) -> None:
        """Apply ``decoder_init`` or ``latent_step`` (see :class:`GridConfig`)."""
        if config.decoder_init is not None:
            nn.init.normal_(self.decoder.weight, std=config.decoder_init)
        elif config.latent_step is not None:
            rows = torch.arange(config.feature_dim)
            weight = torch.zeros(config.feature_dim, config.latent_dim)
            weight[rows, rows % config.latent_dim] = config.latent_step
            self.decoder.weight.copy_(weight)
        else:
            return
        nn.init.zeros_(self.decoder.bias)

    def latent_lr(self, lr: float) -> float:
        """Adam learning rate of the latent proxies for a configured ``lr``.

        With ``latent_step`` set, ``lr`` is in feature units (the float table's learning
        rate) and the latents, in integer units, use ``lr / latent_step``; otherwise
        ``lr`` itself.
        """
        step = self.config.latent_step
        return lr / step if self.config.compressed and step is not None else lr

    @property
    def num_levels(self) -> int:
        return self.layout.num_levels

    @property
    def output_dim(self) -> int:
        """Width of :meth:`interpolate`'s output, ``L * F``."""
        return self.layout.num_levels * self.config.feature_dim

    def quantized_latents(self, tau: float | None = None) -> torch.Tensor:
        """Latents rounded in quantisation phase ``tau``: annealed soft rounding at
        temperature ``tau``, or hard (straight-through) rounding when None.

        Returns:
            [total_rows, D].
        """
        return quantize(self.latents, tau)

    def decoded_table(self, tau: float | None = None) -> torch.Tensor:
        """Decoded features of every row in phase ``tau``: ``decoder(Q)``, or the float
        table if uncompressed (which ignores ``tau``).

        Returns:
            [total_rows, F].
        """
        if not self.config.compressed:
            return self.latents
        return self.decoder(self.quantized_latents(tau))

    def decoded_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The decoded table with only ``rows`` computed (evaluation): what
        :meth:`decoded_table` holds in those rows, bit for bit (the decoder is row-local
        when no gradient is recorded); the other rows are left unset, so only lookups of
        ``rows`` may use it.

        Args:
            rows: [R] int64 global rows (e.g. :func:`~wisp_shacira.grid.hashing.box_rows`).

        Returns:
            [total_rows, F].
        """
        if not self.config.compressed:
            return self.latents
        if torch.is_grad_enabled():
            raise RuntimeError("decoded_rows is for evaluation: call it under torch.no_grad()")
        table = torch.empty(self.layout.total_rows, self.config.feature_dim,
                            dtype=self.latents.dtype, device=self.latents.device)
        table[rows] = self.decoder(quantize(self.latents[rows], None))
        return table

    def step_table(self, tau: float | None = None) -> torch.Tensor | StepLatents:
        """What several :meth:`interpolate` calls of one step share (``table=``): when
        training a compressed grid (gradients on), the latents rounded once in phase
        ``tau`` (:class:`~wisp_shacira.grid.latents_first.StepLatents`: each call then
        interpolates first or decodes the table, whichever costs less); otherwise
        :meth:`decoded_table`, so evaluation is unchanged."""
        if self._training_latents():
            return StepLatents(self.quantized_latents(tau), self.decoder)
        return self.decoded_table(tau)

    def _training_latents(self) -> bool:
        """Whether calls train the latents: a compressed grid in train mode, gradients on
        (``eval()`` keeps a module's arithmetic that of evaluation even with gradients)."""
        return self.config.compressed and self.training and torch.is_grad_enabled()

    def interpolate(self, coords: torch.Tensor | None, lod: int | None = None,
                    tau: float | None = None, plan: EncodingPlan | None = None,
                    table: torch.Tensor | StepLatents | None = None) -> torch.Tensor:
        """Multi-resolution features.

        Args:
            coords: [N, d] in [0, 1] (None when ``plan`` holds them).
            lod: number of levels used (coarsest first, 1..L); finer levels contribute
                zeros. None = all levels.
            tau: quantisation phase (see :meth:`quantized_latents`); None at evaluation.
            plan: precomputed operator for fixed coordinates.
            table: ``decoded_table(tau)`` or ``step_table(tau)`` computed once by the
                caller for several calls (then ``tau`` is not used).
        Returns:
            [N, L * F].

        When training (gradients on) a compressed grid with a batch that reads fewer
        corners than the table holds, only the looked-up latents are rounded and decoded
        (:mod:`~wisp_shacira.grid.gathered`); otherwise, in train mode, when interpolating
        the rounded latents and decoding after costs less than decoding every row, that
        (:mod:`~wisp_shacira.grid.latents_first`). Either is the same function.
        """
        check_lod(lod, self.num_levels)
        active = self.num_levels if lod is None else lod
        if isinstance(table, StepLatents):
            return table.interpolate(coords, self.layout, active, plan)
        training = table is None and self.config.compressed and torch.is_grad_enabled()
        if (training and plan is None and coords is not None
                and worth_gathering(self.layout, coords.shape[0])):
            return encode_gathered(self.latents, self.decoder, coords, self.layout, active, tau)
        if training and self.training and self._latents_first_pays(coords, plan):
            return encode_latents_first(self.quantized_latents(tau), self.decoder, coords,
                                        self.layout, active, plan)
        table = self.decoded_table(tau) if table is None else table
        return encode(table, coords, self.layout, lod, plan)

    def _latents_first_pays(self, coords: torch.Tensor | None, plan: EncodingPlan | None) -> bool:
        """The cost model for all levels, whatever the LOD: every LOD then takes the same
        path, so a LOD's features equal the full grid's on its levels, bit for bit."""
        num_points = coords.shape[0] if coords is not None else plan.num_points
        return latents_first_pays(self.layout, num_points, self.num_levels,
                                  self.config.latent_dim, self.config.feature_dim)

    def rate_bits(self, sample: int | None = None) -> torch.Tensor:
        """Estimated bits of the latents: ``sum -log2 P(Q_hat + u)``, u ~ U(-1/2, 1/2).

        The noisy continuous proxy (not the rounded value) is scored, so the rate
        gives the latents a gradient; the context model takes its contexts from the
        rounded latents. ``sample`` rows drawn at random give an unbiased estimate
        scaled to all rows.

        Returns:
            scalar, bits for the whole table (0 for an uncompressed grid).
        """
        if not self.config.compressed:
            return self.latents.new_zeros(())
        latents = self.latents
        if isinstance(self.prior, ContextPrior):
            contexts = self.prior.contexts(torch.round(latents))
            noisy = latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
            return self.prior.bits(noisy, contexts, sample)
        scale = 1.0
        if sample is not None and sample < latents.shape[0]:
            idx = torch.randint(latents.shape[0], (sample,), device=latents.device)
            latents, scale = latents[idx], latents.shape[0] / sample
        noisy = latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
        return self.prior.bits(noisy).sum() * scale

    @torch.no_grad()
    def model_bits(self) -> float:
        """Bits the trained entropy model assigns to the rounded latents (no noise):
        what the model reports as the rate of the file's latents."""
        if not self.config.compressed:
            return 0.0
        rounded = torch.round(self.latents)
        if isinstance(self.prior, ContextPrior):
            return float(self.prior.bits(rounded, self.prior.contexts(rounded)))
        return float(sum(self.prior.bits(part).sum(dtype=torch.float64)
                         for part in rounded.split(_BITS_CHUNK)))

    @torch.no_grad()
    def integer_latents(self) -> list[np.ndarray]:
        """The rounded latents of each level, coarse to fine: ``[T_l, D]`` int32."""
        ints = torch.round(self.latents).to(torch.int32).cpu().numpy()
        offs = self.layout.offsets
        return [ints[offs[l]:offs[l + 1]] for l in range(self.num_levels)]

    def coded_latents(self, row_masks: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """What a file codes of each level: :meth:`integer_latents`, or only the rows of
        ``row_masks`` (see :attr:`~wisp_shacira.codec.model_io.ShacModel.row_masks`)."""
        levels = self.integer_latents()
        return levels if row_masks is None else [
            coded_rows(level, mask) for level, mask in zip(levels, row_masks)]

    def frequency_tables(self, precision: int = 16,
                         row_masks: list[np.ndarray | None] | None = None) -> list[FrequencyTable]:
        """Integer frequency tables of each latent dimension, from the counts of its rounded
        latents (the coded rows only, under ``row_masks``) over the dimension's range.

        The tables are written into the file, so the coder may use the exact empirical
        distribution of the symbols it codes: that is never worse than the learned prior
        (which only guides training) and was ~20% smaller on Kodak.
        """
        symbols = np.concatenate(self.coded_latents(row_masks))
        return [histogram_table(symbols[:, dim], precision)
                for dim in range(self.config.latent_dim)]

    def context_model(self, precision: int = 16,
                      row_masks: list[np.ndarray | None] | None = None) -> ContextModel:
        """The coder's context model fitted to the rounded latents (see
        :func:`~wisp_shacira.codec.context_io.fit_context_model`); a level coded under a
        mask of ``row_masks`` is fitted to its coded rows as an unstructured level."""
        masks = row_masks or [None] * self.num_levels
        shapes = [shape if mask is None else () for shape, mask in zip(self.layout.shapes, masks)]
        return fit_context_model(self.coded_latents(row_masks), shapes, precision)

    @torch.no_grad()
    def harden(self) -> None:
        """Replace the latent proxies by their rounded values (end of training)."""
        if self.config.compressed:
            self.latents.copy_(torch.round(self.latents))

    @torch.no_grad()
    def load_levels(self, levels: list[np.ndarray]) -> None:
        """Set integer latents of the first ``len(levels)`` levels; zero latents elsewhere.

        Missing levels are masked at interpolation time with ``lod``.
        """
        self.latents.zero_()
        offs = self.layout.offsets
        for level, values in enumerate(levels):
            self.latents[offs[level]:offs[level + 1]] = torch.from_numpy(values.astype(np.float32))
