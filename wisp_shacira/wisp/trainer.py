"""``ShaciraMultiviewTrainer``: Wisp's multiview NeRF trainer plus SHACIRA's rate term.

With a :class:`~wisp_shacira.wisp.grid.ShaciraGrid` in the pipeline it

* moves the latents, the latent decoder and the prior into parameter groups of
  their own (SHACIRA learning rates, no weight decay) after Wisp's name-based grouping;
* sets the soft-rounding temperature before every step and adds
  ``lambda * bits / entries`` to the gradients of Wisp's loss (an optimiser step
  pre-hook, so it works with and without AMP loss scaling);
* keeps Wisp's ``MultiStepLR`` (``trainer.scheduler: True``) off the SHACIRA groups:
  Wisp's own groups still decay by ``scheduler_gamma`` at its milestones, the SHACIRA
  learning rates stay constant (as in the official SHACIRA code, which has no step
  schedule);
* checks before training that the nef can be stored and rebuilt without Wisp, and
  writes the compressed model as a ``.shac`` file when training ends (task
  ``wisp_nerf``, readable by ``wisp-shacira render|lod|view|decode|info``).

With any other grid it behaves exactly like ``MultiviewTrainer``.
This module deliberately avoids ``from __future__ import annotations``: Wisp's
config system reads the dataclass annotations at runtime.
"""
import logging
from pathlib import Path
from typing import Any, Optional

import torch
from wisp.config import configure
from wisp.trainers import ConfigMultiviewTrainer, MultiviewTrainer

from wisp_shacira.errors import ShaciraError
from wisp_shacira.fields.wisp_bridge import (check_rebuildable, heads_of, nef_config_of,
                                             user_config, wisp_lr_factor)
from wisp_shacira.train.rate import (RateTerm, ShaciraLearningRates, refine_param_groups,
                                     schedule_config)
from wisp_shacira.tasks.common import check_not_input
from wisp_shacira.tasks.nerf_config import NerfDatasetConfig
from wisp_shacira.tasks.wisp_nerf import default_scene_sections, file_sections, scene_sections
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
    lr_prior: float = 0.02
    """ Learning rate of the learned probability models (high enough to track the latents). """
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
        """Wisp's groups, then the SHACIRA groups, the rate pre-step hook and a scheduler
        that leaves the SHACIRA groups alone."""
        super().init_optimizer()
        grid = self.shacira_grid()
        if grid is None:
            return
        nef = self.pipeline.nef
        check_rebuildable(grid.core.config, nef_config_of(nef), grid.multiscale_type,
                          heads_of(nef))
        wisp_groups = len(self.optimizer.param_groups)
        lrs = ShaciraLearningRates(latents=self.cfg.lr_latents,
                                   latent_decoder=self.cfg.lr_latent_decoder,
                                   prior=self.cfg.lr_prior)
        refine_param_groups(self.optimizer, grid.core, lrs)
        schedule = schedule_config(self.cfg.lambda_start, self.cfg.lambda_end,
                                   self.cfg.anneal_fraction, self.cfg.tau_start,
                                   self.cfg.tau_end, self.cfg.rate_sample)
        self.rate_term = RateTerm(grid.core, schedule)
        self.rate_term.attach(self.optimizer)
        if self.cfg.scheduler:
            self.scheduler = self._shacira_scheduler(wisp_groups)

    def _shacira_scheduler(self, wisp_groups: int) -> torch.optim.lr_scheduler.LambdaLR:
        """Wisp's ``MultiStepLR`` for its own groups (same milestones, gamma and firing
        rule, see ``wisp_lr_factor``), constant learning rates for the SHACIRA groups."""
        milestones = list(self.scheduler.milestones.elements())
        gamma = self.cfg.scheduler_gamma

        def wisp_factor(step: int) -> float:
            return wisp_lr_factor(step, milestones, gamma)

        factors = [wisp_factor] * wisp_groups
        factors += [lambda step: 1.0] * (len(self.optimizer.param_groups) - wisp_groups)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factors)

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
        app_config = user_config(self.tracker.get_app_config(as_dict=True) or {})
        pretrained = app_config.get("pretrained")
        check_not_input(path, [Path(pretrained)] if pretrained else [])
        tracer = self.pipeline.tracer
        bg_color = [float(c) for c in torch.as_tensor(tracer.bg_color).flatten()[:3]]
        sections = file_sections(nef_config_of(self.pipeline.nef), grid.multiscale_type,
                                 app_config, tuple(bg_color), int(tracer.num_steps),
                                 self._scene_sections(app_config.get("dataset") or {}))
        nbytes = grid.export(path, self.pipeline.nef, sections)
        log.info("wrote %s: %d bytes", path, nbytes)
        return path

    def _scene_sections(self, dataset: dict[str, Any]) -> dict:
        """The file's ``scene`` and ``camera`` from the dataset Wisp trained on; Wisp's
        NeRF-synthetic defaults (with a warning) when that folder cannot be read."""
        ctor = str(dataset.get("constructor", ""))
        mip = int(dataset.get("mip", 0) or 0)
        try:
            cfg = NerfDatasetConfig(path=str(dataset.get("dataset_path", "")), mip=mip,
                                    format="rtmv" if "RTMV" in ctor else "blender",
                                    bg_color=tuple(dataset.get("bg_color", (1.0, 1.0, 1.0))))
            cfg.check()
            return scene_sections(cfg)
        except (ShaciraError, OSError, TypeError, ValueError) as exc:
            height, width = (int(v) for v in getattr(self.train_dataset, "img_shape", (800, 800))[:2])
            log.warning("could not read the scene folder for the .shac camera (%s); the file "
                        "records Wisp's NeRF-synthetic defaults for a %dx%d view", exc, width,
                        height)
            return default_scene_sections(str(self.cfg.exp_name), height, width, mip)
