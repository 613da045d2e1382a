"""The scene decoder's memory estimate (``nerf_eval.scene_bytes``): an upper bound of
what the tracer holds, and not so loose that the bundled configs' scenes are refused."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from wisp_shacira.codec.limits import DEFAULT_MAX_MEMORY
from wisp_shacira.config import build_config, load_config
from wisp_shacira.fields.nerf import RadianceField
from wisp_shacira.tasks.decoding import eval_bytes
from wisp_shacira.tasks.nerf_config import AppConfig
from wisp_shacira.tasks.nerf_eval import SceneFileConfig, scene_bytes

ROOT = Path(__file__).resolve().parents[2]


def _file_config(app: AppConfig, side: int) -> SceneFileConfig:
    """What a scene file of ``app`` trained on ``side x side`` views records."""
    return build_config(SceneFileConfig, {
        "task": "nerf", "grid": dataclasses.asdict(app.grid), "nef": dataclasses.asdict(app.nef),
        "tracer": dataclasses.asdict(app.tracer),
        "occupancy": {"resolution": app.trainer.occupancy_resolution,
                      "subsamples": app.trainer.occupancy_subsamples, "threshold": 0.01},
        "scene": {"name": "lego", "format": "blender", "mip": 2, "height": side,
                  "width": side, "scale": 1.0, "offset": [0.0, 0.0, 0.0]},
        "camera": {"fx": 1.0, "fy": 1.0, "cx": side / 2, "cy": side / 2,
                   "orbit_radius": 4.0, "orbit_height": 1.0}})


def _decode_bytes(app: AppConfig, side: int) -> tuple[float, RadianceField, SceneFileConfig]:
    cfg = _file_config(app, side)
    with torch.device("meta"):
        field = RadianceField(cfg.grid, cfg.nef)
    params = sum(p.numel() for p in field.parameters()) * 4
    return 2 * params + scene_bytes(field, cfg, 1), field, cfg


def test_the_bundled_lego_config_decodes_under_the_default_limit() -> None:
    # Its 200x200 scenes were estimated at 4.4 GiB (one field call was counted as a ray
    # chunk's every sample, not one marching segment's), above the 4 GiB default, so a
    # default `wisp-shacira encode --config shacira_lego` ended in a memory error; a
    # decode of such a file peaks at 0.74 GB resident (measured, every cell occupied).
    app = load_config(AppConfig, ROOT / "configs" / "shacira_lego.yaml", [])
    need, _, _ = _decode_bytes(app, 200)
    assert need < DEFAULT_MAX_MEMORY / 2


def test_the_estimate_covers_one_field_call_of_the_tracer() -> None:
    # Tracer._evaluate calls the field on at most chunk_size rays x ceil(S / segments)
    # samples; with one segment that is the whole chunk, and the estimate grows with it.
    app = load_config(AppConfig, ROOT / "configs" / "shacira_lego.yaml", [])
    need, field, cfg = _decode_bytes(app, 200)
    per_call = cfg.tracer.chunk_size * -(-cfg.tracer.num_samples // cfg.tracer.segments)
    assert need > eval_bytes(field, per_call)
    single = load_config(AppConfig, ROOT / "configs" / "shacira_lego.yaml", ["--tracer.segments", "1"])
    need_single, field, cfg = _decode_bytes(single, 200)
    assert need_single > eval_bytes(field, cfg.tracer.chunk_size * cfg.tracer.num_samples)
    assert need_single > need
