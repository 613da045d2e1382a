"""Optimiser groups and one rate-distortion step of the shared trainer."""
from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from wisp_shacira.errors import TrainingError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.rd import RDTrainer, param_groups

GRID = GridConfig(num_levels=3, min_res=4, max_res=16, log2_table_size=6, feature_dim=2,
                  latent_dim=2)
TRAIN = TrainerConfig(iterations=4, lr_latents=0.1, lr_decoder=1e-4, device="cpu")


def _lrs(grid: GridConfig) -> dict[str, float]:
    field = ImageField(grid, ImageNefConfig(8, 1), channels=3)
    return {group["name"]: group["lr"] for group in param_groups(field, TRAIN)}


@pytest.mark.parametrize("step, expected", [(None, 0.1), (0.05, 2.0), (0.5, 0.2)])
def test_latent_lr_is_in_feature_units_with_a_fixed_step(step: float | None,
                                                         expected: float) -> None:
    lrs = _lrs(dataclasses.replace(GRID, latent_step=step))
    assert lrs["latents"] == pytest.approx(expected)
    assert lrs["decoder"] == 1e-4


def test_float_grid_ignores_the_step() -> None:
    lrs = _lrs(dataclasses.replace(GRID, compressed=False, latent_step=0.05))
    assert lrs["latents"] == pytest.approx(0.1) and "decoder" not in lrs


def test_fixed_step_training_moves_latents_by_whole_units() -> None:
    torch.manual_seed(0)
    field = ImageField(dataclasses.replace(GRID, latent_step=0.01), ImageNefConfig(8, 1),
                       channels=3)
    coords, target = torch.rand(256, 2), torch.rand(256, 3)
    before = field.grid.latents.detach().clone()
    trainer = RDTrainer(field, TRAIN)
    for _ in range(TRAIN.iterations):
        trainer.step(lambda tau: torch.mean((field(coords, tau=tau) - target) ** 2))
    moved = (field.grid.latents.detach() - before).abs().max()
    assert moved > 1.0, "the latents' lr (0.1 / 0.01 = 10 per step) should move whole units"



@pytest.mark.parametrize("phase", ["ste", "frozen"])
def test_hard_phase_frozen_keeps_the_latents_and_trains_the_rest(phase: str) -> None:
    torch.manual_seed(0)
    field = ImageField(GRID, ImageNefConfig(8, 1), channels=3)
    coords, target = torch.rand(256, 2), torch.rand(256, 3)
    cfg = dataclasses.replace(TRAIN, iterations=6, anneal_fraction=0.5, hard_phase=phase)
    trainer = RDTrainer(field, cfg)
    loss = lambda tau: torch.mean((field(coords, tau=tau) - target) ** 2)  # noqa: E731
    for _ in range(3):
        trainer.step(loss)
    latents = field.grid.latents.detach().clone()
    heads = [p.detach().clone() for p in field.heads.parameters()]
    for _ in range(3):
        assert trainer.tau(trainer.step_idx) is None
        trainer.step(loss)
    assert torch.equal(field.grid.latents.detach(), latents) == (phase == "frozen")
    assert any(not torch.equal(p.detach(), h) for p, h in zip(field.heads.parameters(), heads))

def test_a_diverging_run_stops_with_a_clear_error() -> None:
    field = ImageField(GRID, ImageNefConfig(8, 1), channels=3)
    trainer = RDTrainer(field, TRAIN)
    with pytest.raises(TrainingError, match="diverged at step 1 of 4"):
        trainer.step(lambda tau: torch.tensor(float("nan"), requires_grad=True))


def test_size_probe_is_throttled_to_a_share_of_the_time_and_forced_at_the_end() -> None:
    field = ImageField(GRID, ImageNefConfig(8, 1), channels=3)
    calls = []

    def probe() -> int:
        calls.append(1)
        time.sleep(0.05)                            # a slow probe: 1 s must pass before the next
        return 100 + len(calls)

    trainer = RDTrainer(field, TRAIN, size_probe=probe)
    assert trainer.measure() == 101 and trainer.measure() == 101 and len(calls) == 1
    assert trainer.measure(force=True) == 102 and len(calls) == 2
