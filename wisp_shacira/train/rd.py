"""The rate-distortion training loop shared by every task.

``loss = distortion + lambda * bits / entries`` (:func:`~wisp_shacira.train.rate.rate_loss`).
The task supplies the distortion of a step as ``distortion(tau) -> MSE``, where ``tau``
is the step's quantisation phase, passed on to the field's forward pass. The trainer
owns the optimiser, the schedules (temperature, lambda, learning rate), the size
probe and the progress bar; a task adds its own per-step work (the NeRF
occupancy updates, validation, checkpoints) through :class:`StepHooks`.

Under ``torchrun`` (a :class:`~wisp_shacira.train.distributed.DataParallel` with several
processes) each rank's ``distortion(tau)`` is its share of the global batch, weighted so
that the mean over ranks is the global MSE; a step back-propagates it, averages those
gradients over the ranks (:class:`~wisp_shacira.train.distributed.GradientReducer`),
then back-propagates the rate locally. Only the main process shows a progress bar and
measures the file size while training.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from wisp_shacira.errors import ConfigError, TrainingError
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.distributed import SINGLE, DataParallel, GradientReducer
from wisp_shacira.train.rate import grid_param_groups, rate_loss
from wisp_shacira.train.schedules import lambda_at, lr_factor_at, tau_at

PROBE_SHARE = 0.05
"""Largest share of the training time the size shown in the progress bar may cost."""

Distortion = Callable[[float | None], torch.Tensor]
"""``distortion(tau) -> scalar MSE`` of one step, the field evaluated in phase ``tau`` (in a
data-parallel run: of this rank's slice of the global batch, times
:meth:`~wisp_shacira.train.distributed.DataParallel.weight`)."""


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device is cuda but no CUDA device is available")
    return torch.device(name)


def param_groups(field: CompressedField, cfg: TrainerConfig) -> list[dict]:
    """Adam groups: latents, decoder, prior (:func:`grid_param_groups`) and heads; each
    remembers its base lr."""
    groups = grid_param_groups(field.grid, cfg.lr_latents, cfg.lr_decoder, cfg.lr_prior)
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


class StepHooks:
    """Per-step work of a task around the trainer's steps (no-ops by default)."""

    def before_step(self, step: int, tau: float | None) -> None:
        """Before step ``step`` (0-based), in its phase ``tau``."""

    def after_step(self, steps_done: int, stats: StepStats) -> None:
        """After the ``steps_done``-th step."""

    def postfix(self) -> dict[str, str]:
        """Extra progress-bar fields (only values that exist: no placeholders)."""
        return {}


class RDTrainer:
    """Runs rate-distortion steps on a field.

    Args:
        field: the model.
        cfg: trainer configuration.
        size_probe: bytes of the file if written now
            (:func:`~wisp_shacira.train.rate_control.file_size_probe`), shown while
            training; None = the prior's estimate of the latent bits is shown.
        lambda_scale: multiplier of the lambda schedule (a rate-control pass).
        parallel: the data-parallel process group (default: a single process).
    """

    def __init__(self, field: CompressedField, cfg: TrainerConfig,
                 size_probe: Callable[[], int] | None = None,
                 lambda_scale: float = 1.0, parallel: DataParallel = SINGLE) -> None:
        self.field = field
        self.cfg = cfg
        self.size_probe = size_probe
        self.lambda_scale = lambda_scale
        self.optimizer = torch.optim.Adam(param_groups(field, cfg), eps=1e-15)
        self.parallel = parallel
        self.reducer: GradientReducer | None = None
        if self.parallel.distributed:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            self.reducer = GradientReducer(params, field.grid.latents, self.parallel)
        self.step_idx = 0
        self.last_size: int | None = None
        self._probed_at = -math.inf
        self._probe_seconds = 0.0

    def tau(self, step: int) -> float | None:
        """Quantisation phase of step ``step`` (None: hard rounding, or an uncompressed grid)."""
        if not self.field.grid.config.compressed:
            return None
        return tau_at(self.cfg, step / self.cfg.iterations)

    def lam(self, step: int) -> float:
        """Rate weight of step ``step``: the schedule times ``lambda_scale``."""
        return lambda_at(self.cfg, step / self.cfg.iterations) * self.lambda_scale

    def step(self, distortion: Distortion) -> StepStats:
        """One optimisation step on ``distortion(tau) + lambda * bits / entries``."""
        step = self.step_idx
        factor = lr_factor_at(self.cfg, step / self.cfg.iterations)
        tau = self.tau(step)
        frozen = (tau is None and self.cfg.hard_phase == "frozen"
                  and self.field.grid.config.compressed)
        for group in self.optimizer.param_groups:
            still = frozen and group.get("name") == "latents"
            group["lr"] = 0.0 if still else group["base_lr"] * factor
        mse = distortion(tau)
        rate, bits = rate_loss(self.field.grid, self.lam(step), self.cfg.rate_sample)
        self.optimizer.zero_grad(set_to_none=True)
        if self.reducer is None:
            loss = mse + rate
            self._check_finite(step, float(loss.detach()), float(mse.detach()))
            loss.backward()
            mse_value, loss_value = float(mse.detach()), float(loss.detach())
        else:
            mse_value, loss_value = self._parallel_backward(step, mse, rate)
        self.optimizer.step()
        self.step_idx += 1
        return StepStats(mse_value, float(bits), loss_value)

    def _check_finite(self, step: int, loss: float, mse: float) -> None:
        if not math.isfinite(loss):
            raise TrainingError(
                f"training diverged at step {step + 1} of {self.cfg.iterations}: the loss is "
                f"{loss} (distortion {mse}); lower trainer.lr_* "
                f"or, with rate control, raise the target (lambda was {self.lam(step):.3g})")

    def _parallel_backward(self, step: int, mse: torch.Tensor,
                           rate: torch.Tensor) -> tuple[float, float]:
        """Distortion gradients averaged over the ranks, then the rate's added locally;
        returns (global MSE, global loss). Every rank sees the same global values, so a
        non-finite loss stops all of them alike."""
        assert self.reducer is not None
        if mse.requires_grad:
            mse.backward()
        mse_value = self.reducer.reduce(mse)
        loss_value = mse_value + float(rate.detach())
        self._check_finite(step, loss_value, mse_value)
        if rate.requires_grad:
            rate.backward()
        return mse_value, loss_value

    def measure(self, force: bool = False) -> int | None:
        """Bytes of the file if written now (None without a size probe).

        The probe codes every latent (0.11 s for the lego grid), so unless ``force`` it
        runs only once :data:`PROBE_SHARE` of the time since the last one has passed its
        own duration; in between the last size is returned.
        """
        if self.size_probe is None:
            return None
        now = time.perf_counter()
        if not force and now - self._probed_at < self._probe_seconds / PROBE_SHARE:
            return self.last_size
        try:
            self.last_size = self.size_probe()
        except ValueError as exc:       # a weight the file cannot store: not finite
            raise TrainingError(f"training diverged by step {self.step_idx} of "
                                f"{self.cfg.iterations}: {exc}; lower trainer.lr_*") from exc
        self._probed_at = time.perf_counter()
        self._probe_seconds = self._probed_at - now
        return self.last_size

    def _postfix(self, stats: StepStats, hooks: Sequence[StepHooks]) -> dict[str, str]:
        size = self.last_size if self.size_probe is not None else stats.bits / 8
        out = {"loss": f"{stats.loss:.2e}", "psnr": f"{stats.psnr:.2f}",
               "size": f"{size / 1024:.1f}KiB"}
        for hook in hooks:
            out.update(hook.postfix())
        return out

    def _after_step(self, stats: StepStats, hooks: Sequence[StepHooks], bar: tqdm,
                    on_log: Callable[[int, StepStats], None] | None) -> None:
        done = self.step_idx
        for hook in hooks:
            hook.after_step(done, stats)
        if (done % self.cfg.log_every == 0 or done == self.cfg.iterations) \
                and self.parallel.is_main:
            self.measure(force=done == self.cfg.iterations)
            bar.set_postfix(self._postfix(stats, hooks))
            if on_log is not None:
                on_log(done, stats)

    def run(self, distortion: Distortion, desc: str, hooks: Sequence[StepHooks] = (),
            on_log: Callable[[int, StepStats], None] | None = None) -> StepStats:
        """Steps until ``cfg.iterations`` (from ``step_idx``, e.g. after a resume), with a
        progress bar (loss, PSNR, size, the hooks' fields; on the main process only).
        A data-parallel run ends by checking that every rank holds the same field.

        Raises:
            TrainingError: the loss stopped being finite, or the ranks disagree.
        """
        stats = StepStats(float("nan"), 0.0, float("nan"))
        quiet = {} if self.parallel.is_main else {"disable": True}
        bar = tqdm(total=self.cfg.iterations, initial=self.step_idx, desc=desc,
                   mininterval=1.0, dynamic_ncols=True, **quiet)
        with bar:
            while self.step_idx < self.cfg.iterations:
                for hook in hooks:
                    hook.before_step(self.step_idx, self.tau(self.step_idx))
                stats = self.step(distortion)
                bar.update(1)
                self._after_step(stats, hooks, bar, on_log)
        if self.reducer is not None:
            self.reducer.check_in_sync(self.field)
        return stats

    def parallel_report(self) -> dict | None:
        """What the data-parallel run averaged each step
        (:meth:`~wisp_shacira.train.distributed.GradientReducer.report`); None for one
        process."""
        return None if self.reducer is None else self.reducer.report()

    def fit(self, distortion: Distortion, desc: str, writer=None, tag: str = "") -> StepStats:
        """Train to the end (TensorBoard scalars under ``tag`` when ``writer`` is given), then
        harden the latents and round the weights to file precision, ready for export."""
        def log(step: int, stats: StepStats) -> None:
            if writer is not None:
                writer.add_scalar(f"{tag}/psnr_batch", stats.psnr, step)
                writer.add_scalar(f"{tag}/bits", stats.bits, step)
                if self.last_size is not None:
                    writer.add_scalar(f"{tag}/bytes", self.last_size, step)

        self.field.train()
        stats = self.run(distortion, desc, on_log=log)
        self.field.eval()
        self.field.round_weights()
        return stats
