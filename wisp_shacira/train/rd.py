"""The rate-distortion optimisation step shared by every task.

``loss = distortion + lambda * bits_per_latent``, where ``bits_per_latent`` is the
prior's self-information of the noisy latents averaged over all latent entries (the
paper's ``L_I``). The task supplies the distortion (an MSE) for a step; the trainer
owns the optimiser, the schedules (temperature, lambda, learning rate) and the
progress bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from wisp_shacira.fields.base import CompressedField
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.schedules import lambda_at, lr_factor_at, tau_at


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from wisp_shacira.errors import ConfigError
        raise ConfigError("trainer.device is cuda but no CUDA device is available")
    return torch.device(name)


def param_groups(field: CompressedField, cfg: TrainerConfig) -> list[dict]:
    """Adam groups: latents, decoder, prior, heads; each remembers its base lr."""
    grid = field.grid
    groups = [{"name": "latents", "params": [grid.latents], "lr": grid.latent_lr(cfg.lr_latents)}]
    if grid.config.compressed:
        groups.append({"name": "decoder", "params": list(grid.decoder.parameters()),
                       "lr": cfg.lr_decoder})
        groups.append({"name": "prior", "params": list(grid.prior.parameters()), "lr": cfg.lr_prior})
    groups.append({"name": "heads", "params": list(field.heads.parameters()), "lr": cfg.lr_mlp})
    for group in groups:
        group["base_lr"] = group["lr"]
    return groups


@dataclass
class StepStats:
    """What one step measured: distortion (MSE), estimated latent bits, total loss."""

    mse: float
    bits: float
    loss: float

    @property
    def psnr(self) -> float:
        return -10.0 * math.log10(max(self.mse, 1e-12))


class RDTrainer:
    """Runs rate-distortion steps on a field.

    Args:
        field: the model.
        cfg: trainer configuration.
        fixed_bytes: bytes of the file that do not depend on the latents (weights,
            headers), added to the size estimate shown while training; None = the
            field's stored weights plus ~300 bytes of headers and tables.
    """

    def __init__(self, field: CompressedField, cfg: TrainerConfig,
                 fixed_bytes: int | None = None) -> None:
        self.field = field
        self.cfg = cfg
        self.fixed_bytes = field.stored_weight_bytes() + 300 if fixed_bytes is None else fixed_bytes
        self.optimizer = torch.optim.Adam(param_groups(field, cfg), eps=1e-15)
        self.step_idx = 0

    def _set_phase(self, step: int) -> None:
        """Quantisation phase (``grid.tau``) and learning rates of step ``step``."""
        cfg, grid = self.cfg, self.field.grid
        progress = step / cfg.iterations
        grid.tau = tau_at(cfg, progress) if grid.config.compressed else None
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor_at(cfg, progress)

    def restore_phase(self) -> None:
        """After loading a checkpoint: the phase the field had when it was saved (that of
        the last step done), which anything evaluated before the next step sees (the
        NeRF occupancy update), exactly as in a run that was not interrupted."""
        if self.step_idx > 0:
            self._set_phase(self.step_idx - 1)

    def step(self, distortion: Callable[[], torch.Tensor]) -> StepStats:
        """One optimisation step; ``distortion()`` returns the MSE of this step."""
        cfg, grid = self.cfg, self.field.grid
        progress = self.step_idx / cfg.iterations
        self._set_phase(self.step_idx)
        mse = distortion()
        bits = grid.rate_bits(cfg.rate_sample)
        loss = mse + lambda_at(cfg, progress) * bits / grid.latents.numel()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_idx += 1
        return StepStats(float(mse.detach()), float(bits.detach()), float(loss.detach()))

    def estimated_bytes(self, stats: StepStats) -> int:
        return int(stats.bits / 8) + self.fixed_bytes

    def fit(self, distortion: Callable[[], torch.Tensor], desc: str, writer=None,
            tag: str = "") -> StepStats:
        """Train to the end (TensorBoard scalars under ``tag`` when ``writer`` is given), then
        harden the latents and round the weights to file precision, ready for export."""
        def log(step: int, stats: StepStats) -> None:
            if writer is not None:
                writer.add_scalar(f"{tag}/psnr_batch", stats.psnr, step)
                writer.add_scalar(f"{tag}/bits", stats.bits, step)

        self.field.train()
        stats = self.run(distortion, desc, on_log=log)
        self.field.eval()
        self.field.round_weights()
        return stats

    def run(self, distortion: Callable[[], torch.Tensor], desc: str,
            on_log: Callable[[int, StepStats], None] | None = None) -> StepStats:
        """Steps until ``cfg.iterations``, with a progress bar (loss, PSNR, est. size)."""
        stats = StepStats(float("nan"), 0.0, float("nan"))
        bar = tqdm(total=self.cfg.iterations, initial=self.step_idx, desc=desc,
                   mininterval=1.0, dynamic_ncols=True)
        with bar:
            while self.step_idx < self.cfg.iterations:
                stats = self.step(distortion)
                bar.update(1)
                if self.step_idx % self.cfg.log_every == 0 or self.step_idx == self.cfg.iterations:
                    bar.set_postfix(loss=f"{stats.loss:.2e}", psnr=f"{stats.psnr:.2f}",
                                    size=f"{self.estimated_bytes(stats) / 1024:.1f}KiB")
                    if on_log is not None:
                        on_log(self.step_idx, stats)
        return stats
