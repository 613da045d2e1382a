"""``ShaciraMultiviewTrainer``: Wisp's multiview NeRF trainer plus SHACIRA's rate term.

With a :class:`~wisp_shacira.wisp.grid.ShaciraGrid` in the pipeline it

* moves the latents, the latent decoder and the prior into parameter groups of
  their own (SHACIRA learning rates, no weight decay) after Wisp's name-based grouping;
* sets the soft-rounding temperature before every step and adds
  ``lambda * bits / entries`` to the gradients of Wisp's loss (an optimiser step
  pre-hook, so it works with and without AMP loss scaling);
* writes the compressed model as a ``.shac`` file when training ends.

With any other grid it behaves exactly like ``MultiviewTrainer``.
This module deliberately avoids ``from __future__ import annotations``: Wisp's
config system reads the dataclass annotations at runtime.
"""
import logging
from pathlib import Path
from typing import Optional

from wisp.config import configure
from wisp.trainers import ConfigMultiviewTrainer, MultiviewTrainer

from wisp_shacira.fields.wisp_bridge import json_scalars
from wisp_shacira.train.rate import (RateTerm, ShaciraLearningRates, refine_param_groups,
                                     schedule_config)
from wisp_shacira.tasks.common import check_not_input
from wisp_shacira.wisp.grid import ShaciraGrid

log = logging.getLogger(__name__)


@configure
class ConfigShaciraTrainer(ConfigMultiviewTrainer):
    """ Multiview trainer configuration plus SHACIRA's rate-distortion settings. """

    lambda_start: float = 1e-3
    """ Rate weight at the start of training (cosine schedule to lambda_end). """
    lambda_end: float = 1e-4
    """ Rate weight at the end of training. """
    anneal_fraction: float = 0.9
    """ Fraction of training with annealed soft rounding; hard (STE) rounding after it. """
    tau_start: float = 1.0
    """ Soft-rounding temperature at the start (geometric decay to tau_end). """
    tau_end: float = 0.05
    """ Soft-rounding temperature at the end of the annealing period. """
    rate_sample: Optional[int] = None
    """ Estimate the rate from this many random latent rows per step (None: all rows). """
    lr_latents: float = 0.02
    """ Learning rate of the integer latents' continuous proxies (in feature units when the
    grid sets latent_step: the latents then use lr_latents / latent_step). """
    lr_latent_decoder: float = 0.01
    """ Learning rate of the shared latent decoder (latents -> features). """
    lr_prior: float = 1e-3
    """ Learning rate of the learned probability models. """
    shac_path: Optional[str] = None
    """ Where to write the compressed model after training (None: <log_dir>/model.shac). """


class ShaciraMultiviewTrainer(MultiviewTrainer):
    """``MultiviewTrainer`` that optimises ``distortion + lambda * rate`` for a ShaciraGrid."""

    rate_term: Optional[RateTerm] = None

    def shacira_grid(self) -> Optional[ShaciraGrid]:
        """The pipeline's grid when it is a ShaciraGrid, else None."""
        grid = getattr(self.pipeline.nef, "grid", None)
        return grid if isinstance(grid, ShaciraGrid) else None

    def init_optimizer(self) -> None:
        """Wisp's groups, then the SHACIRA groups and the rate pre-step hook."""
        super().init_optimizer()
        grid = self.shacira_grid()
        if grid is None:
            return
        lrs = ShaciraLearningRates(latents=self.cfg.lr_latents,
                                   latent_decoder=self.cfg.lr_latent_decoder,
                                   prior=self.cfg.lr_prior)
        refine_param_groups(self.optimizer, grid.core, lrs)
        schedule = schedule_config(self.cfg.lambda_start, self.cfg.lambda_end,
                                   self.cfg.anneal_fraction, self.cfg.tau_start,
                                   self.cfg.tau_end, self.cfg.rate_sample)
        self.rate_term = RateTerm(grid.core, schedule)
        self.rate_term.attach(self.optimizer)

    def pre_step(self) -> None:
        """Set this step's temperature before Wisp's pre-step logic (pruning) and forward pass."""
        if self.rate_term is not None:
            grid = self.shacira_grid()
            grid.tau = self.rate_term.begin_step(self.total_iterations, self.max_iterations)
        super().pre_step()

    def log_console(self) -> None:
        super().log_console()
        if self.rate_term is not None:
            bits = self.rate_term.last_bits
            log.info("EPOCH %d/%d | estimated latent size: %.1f KiB (%.4g bits)",
                     self.epoch, self.max_epochs, bits / 8 / 1024, bits)

    def post_training(self) -> None:
        """Export the compressed model, then Wisp's post-training logic."""
        if self.shacira_grid() is not None:
            self.export_shac()
        super().post_training()

    def export_shac(self) -> Path:
        """Write the pipeline's grid and nef modules to ``cfg.shac_path`` (default
        ``<log_dir>/model.shac``); returns the path."""
        grid = self.shacira_grid()
        if grid is None:
            raise ValueError("export_shac needs a pipeline whose grid is a ShaciraGrid")
        default = Path(self.tracker.log_dir) / "model.shac"
        path = Path(self.cfg.shac_path) if self.cfg.shac_path else default
        app_config = self.tracker.get_app_config(as_dict=True) or {}
        pretrained = app_config.get("pretrained")
        check_not_input(path, [Path(pretrained)] if pretrained else [])
        nef_args = json_scalars(app_config.get("nef") or {})
        nbytes = grid.export(path, self.pipeline.nef, {"nef": nef_args})
        log.info("wrote %s: %d bytes", path, nbytes)
        return path
