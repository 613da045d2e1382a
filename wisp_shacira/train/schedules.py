"""Schedules of the rate-distortion training: temperature, rate weight, learning rate.

``progress`` is ``step / iterations`` in [0, 1].
"""
from __future__ import annotations

import math

from wisp_shacira.train.config import TrainerConfig


def tau_at(cfg: TrainerConfig, progress: float) -> float | None:
    """Soft-rounding temperature, geometric from ``tau_start`` to ``tau_end`` over the
    annealing period; None (hard straight-through rounding) after it."""
    if progress >= cfg.anneal_fraction:
        return None
    t = progress / cfg.anneal_fraction
    return cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** t


def lambda_at(cfg: TrainerConfig, progress: float) -> float:
    """Rate weight, cosine from ``lambda_start`` to ``lambda_end``."""
    return cfg.lambda_end + (cfg.lambda_start - cfg.lambda_end) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_factor_at(cfg: TrainerConfig, progress: float) -> float:
    """Learning-rate multiplier, cosine from 1 to ``lr_final``."""
    return cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * progress))
