"""Training hyper-parameters shared by the tasks (YAML section ``trainer``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wisp_shacira.config import require


@dataclass
class TrainerConfig:
    """Optimisation and rate-distortion schedule.

    Attributes:
        iterations: optimisation steps.
        lr_latents: learning rate of the latents (or of the float table if uncompressed);
            in feature units when ``grid.latent_step`` is set (the latents then use
            ``lr_latents / latent_step``).
        lr_decoder: learning rate of the shared latent decoder.
        lr_mlp: learning rate of the MLP heads.
        lr_prior: learning rate of the probability models: high enough that the prior
            tracks the latents (with 1e-3 the reported rate was 76-82% above the coded one
            at 800 steps of the demo image, and files came out 9-16% larger).
        lr_final: final learning rate as a fraction of the initial one (cosine decay).
        lambda_start: rate weight at the start (cosine schedule to ``lambda_end``).
        lambda_end: rate weight at the end.
        anneal_fraction: fraction of training with soft rounding; then hard rounding.
        hard_phase: what trains after the annealing period: ``ste`` (everything, the
            latents through straight-through rounding: the paper's) or ``frozen`` (the
            integer latents stay as the annealing left them; the decoder and heads adapt
            to them).
        tau_start: soft-rounding temperature at the start (geometric decay).
        tau_end: temperature at the end of the annealing period.
        rate_sample: score this many latent rows per step for the rate (None = all).
        batch_size: points per step; 0 = the whole signal (full batch).
        log_every: steps between progress-bar/TensorBoard updates.
        seed: random seed.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        tensorboard: write TensorBoard logs under the output folder.
        target_bpp: rate control to this many bits per pixel (images, videos). Trains
            in passes with the lambda schedule scaled until within 5% (see
            ``train.rate_control``); None = the lambda schedule as given.
        target_bytes: rate control to a file size in bytes (any task; for scenes).
    """

    iterations: int = 2000
    lr_latents: float = 0.02
    lr_decoder: float = 0.01
    lr_mlp: float = 1e-2
    lr_prior: float = 0.02
    lr_final: float = 0.1
    lambda_start: float = 1e-3
    lambda_end: float = 1e-4
    anneal_fraction: float = 0.9
    hard_phase: Literal["ste", "frozen"] = "ste"
    tau_start: float = 1.0
    tau_end: float = 0.05
    rate_sample: int | None = None
    batch_size: int = 0
    log_every: int = 25
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = False
    target_bpp: float | None = None
    target_bytes: int | None = None

    def check(self) -> None:
        require(self.iterations >= 1, f"trainer.iterations must be >= 1, got {self.iterations}")
        for name in ("lr_latents", "lr_decoder", "lr_mlp", "lr_prior"):
            require(getattr(self, name) > 0, f"trainer.{name} must be > 0")
        require(0 < self.lr_final <= 1, "trainer.lr_final must be in (0, 1]")
        require(self.lambda_start >= 0 and self.lambda_end >= 0, "trainer.lambda_* must be >= 0")
        require(0 <= self.anneal_fraction <= 1, "trainer.anneal_fraction must be in [0, 1]")
        require(self.hard_phase in ("ste", "frozen"),
                f"trainer.hard_phase must be ste or frozen, got {self.hard_phase!r}")
        require(0 < self.tau_end <= self.tau_start, "need 0 < trainer.tau_end <= trainer.tau_start")
        require(self.rate_sample is None or self.rate_sample > 0, "trainer.rate_sample must be > 0")
        require(self.batch_size >= 0, "trainer.batch_size must be >= 0")
        require(self.log_every >= 1, "trainer.log_every must be >= 1")
        require(self.device in ("auto", "cpu", "cuda"), "trainer.device must be auto, cpu or cuda")
        require(self.target_bpp is None or self.target_bpp > 0, "trainer.target_bpp must be > 0")
        require(self.target_bytes is None or self.target_bytes > 0,
                "trainer.target_bytes must be > 0")
        require(self.target_bpp is None or self.target_bytes is None,
                "give trainer.target_bpp or trainer.target_bytes, not both")
