"""``wisp.trainers.tracker`` (test double): ``ConfigTracker`` with the real fields and
``Tracker`` (log folder, app config, metrics; dashboards are no-ops)."""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from typing import Optional, Tuple

from wisp.config import autoconfig, configure, instantiate


class _Tensorboard:
    def __init__(self, log_dir: str, exp_name: Optional[str], log_fname: Optional[str]):
        self.log_dir = log_dir


class _WandB:
    def __init__(self, entity: Optional[str] = None, project: Optional[str] = None,
                 group: Optional[str] = None, run_name: Optional[str] = None,
                 job_type: Optional[str] = None, sync_tensorboard: Optional[bool] = True):
        self.project = project


class OfflineRenderer:
    def __init__(self, render_res: Tuple[int, int] = (512, 512), render_batch: int = -1,
                 shading_mode: str = 'rb', matcap_path: str = './data/matcap/Pearl.png',
                 shadow: bool = False, ao: bool = False, perf: bool = False, device='cuda'):
        self.render_res, self.render_batch = render_res, render_batch


@configure
class ConfigVisCameras:
    camera_origin: Tuple[float, float, float] = (-2.8, 2.8, -2.8)
    camera_lookat: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_fov: float = 30.0
    camera_clamp: Tuple[float, float] = (0.0, 10.0)
    viz360_num_angles: int = 20
    viz360_radius: float = 3.0
    viz360_render_all_lods: bool = False


@configure
class ConfigTracker:
    tensorboard: autoconfig(_Tensorboard)
    wandb: autoconfig(_WandB)
    visualizer: autoconfig(OfflineRenderer)
    vis_camera: ConfigVisCameras
    enable_tensorboard: bool = True
    enable_wandb: bool = False
    log_dir: str = '_results/logs'


class MetricsBoard:
    """Per-epoch metric sums (``metrics.py``): ``board.total_loss += x``."""

    def __init__(self):
        object.__setattr__(self, "values", {})

    def __getattr__(self, name):
        return self.values.get(name, 0.0)

    def __setattr__(self, name, value):
        self.values[name] = value

    def define_metric(self, name, aggregation_type=float):
        self.values.setdefault(name, 0.0)

    def average_metric(self, name):
        return self.values.get(name, 0.0) / max(self.values.get("num_samples", 0), 1)

    def clear(self):
        self.values.clear()

    def finalize_epoch(self, wisp_state):
        pass

    @property
    def active_metrics(self):
        return list(self.values)


class Tracker:
    """``tracker.py:101``: ``log_dir = cfg.log_dir/exp_name/log_fname``; ``get_app_config(
    as_dict=True)`` is ``dataclasses.asdict`` of the app config (``tracker.py:146``)."""

    def __init__(self, cfg, exp_name: str, log_fname: Optional[str] = None):
        self.cfg, self.exp_name = cfg, exp_name
        self.log_fname = log_fname or datetime.now().strftime("%Y%m%d-%H%M%S")
        self.visualizer = instantiate(cfg.visualizer)
        self.metrics = MetricsBoard()
        self.log_dir = os.path.join(cfg.log_dir, exp_name, self.log_fname)
        os.makedirs(self.log_dir, exist_ok=True)
        self.app_config = None
        self.torn_down = False

    def save_app_config(self, app_config):
        self.app_config = app_config

    def get_app_config(self, as_dict: bool = False):
        if as_dict and self.app_config is not None:
            return dataclasses.asdict(self.app_config)
        return self.app_config

    def get_record_dict(self):
        return None

    def log_metric(self, metric, value, step=None):
        pass

    def log_config(self, config):
        pass

    def log_table(self, caption, data, step=None):
        pass

    def log_image(self, key, image, step):
        pass

    def log_artifact(self, model_fname, names):
        pass

    def teardown(self):
        self.torn_down = True
