"""``wisp.trainers`` (test double): the lifecycle of ``base_trainer.py`` and the NeRF step
of ``multiview_trainer.py`` (warm-up ray march, AMP + ``GradScaler``, ``MultiStepLR``,
pruning every ``prune_every`` iterations).

Divergences: the scaler and autocast are ``torch.amp``'s for the trainer's device (Wisp
uses the CUDA ones, disabled off CUDA), ``validate`` only records that it ran, and the
``DataLoader`` has no workers."""
from __future__ import annotations

import math
import random
from typing import Optional, Tuple, Union

import torch
from torch.utils.data import DataLoader

from wisp.config import configure, instantiate
from wisp.config.presets import ConfigAdam, ConfigAdamW, ConfigDataloader, ConfigRMSprop
from wisp.datasets import SampleRays, default_collate
from wisp.framework import WispState


@configure
class ConfigBaseTrainer:
    optimizer: Union[ConfigAdam, ConfigRMSprop, ConfigAdamW]
    dataloader: ConfigDataloader
    exp_name: str
    mode: str = 'train'
    max_epochs: int = 250
    save_every: int = -1
    save_as_new: bool = False
    model_format: str = 'full'
    render_every: int = 100
    valid_every: int = -1
    valid_split: str = 'test'
    enable_amp: bool = True
    profile_nvtx: bool = True
    grid_lr_weight: float = 1.0
    scheduler: bool = False
    scheduler_milestones: Tuple[float, ...] = (0.5, 0.75, 0.9)
    scheduler_gamma: float = 0.333
    valid_metrics: Tuple[str, ...] = ('psnr',)


@configure
class ConfigMultiviewTrainer(ConfigBaseTrainer):
    start_prune: int = 1000
    prune_every: int = 100
    random_lod: bool = False
    rgb_lambda: float = 1.0
    opacity_loss: float = 0.0
    rgb_loss_type: str = 'l2'
    rgb_loss_denom: str = 'rays'
    target_sample_size: int = 2**18
    save_valid_imgs: bool = False


class BaseTrainer:
    def __init__(self, cfg, pipeline, train_dataset, tracker, device='cuda',
                 scene_state: Optional[WispState] = None):
        self.device, self.cfg = device, cfg
        self.pipeline = pipeline.to(device)
        self.train_dataset, self.tracker = train_dataset, tracker
        self.scene_state = WispState() if scene_state is None else scene_state
        self.scaler = None
        self.train_data_loader_iter = None
        self.enable_amp = cfg.enable_amp
        self.max_epochs = cfg.max_epochs
        self.epoch, self.iteration = 1, 0
        self.return_dict = {}
        self.scene_state.optimization.train_data.append(train_dataset)
        self.init_optimizer()
        self.init_dataloader()

    def init_dataloader(self):
        self.train_data_loader = DataLoader(self.train_dataset, batch_size=self.cfg.dataloader.batch_size,
                                            collate_fn=default_collate, shuffle=True,
                                            num_workers=self.cfg.dataloader.num_workers)
        self.iterations_per_epoch = len(self.train_data_loader)

    def init_optimizer(self):
        """``base_trainer.py:205``: groups by parameter name, then ``MultiStepLR``."""
        decoder_params, grid_params, rest_params = [], [], []
        for name, param in self.pipeline.nef.named_parameters():
            if 'decoder' in name:
                decoder_params.append(param)
            elif 'grid' in name:
                grid_params.append(param)
            else:
                rest_params.append(param)
        lr, eps = self.cfg.optimizer.lr, self.cfg.optimizer.eps
        params = [{"params": decoder_params, "lr": lr, "eps": eps,
                   "weight_decay": self.cfg.optimizer.weight_decay},
                  {"params": grid_params, "eps": eps, "lr": lr * self.cfg.grid_lr_weight},
                  {"params": rest_params, "eps": eps, "lr": lr}]
        max_steps = len(self.train_dataset) * self.cfg.max_epochs
        milestone_iters = [max_steps * x for x in self.cfg.scheduler_milestones]
        self.optimizer = instantiate(self.cfg.optimizer, params=params)
        self.scaler = torch.amp.GradScaler(torch.device(self.device).type)
        if self.cfg.scheduler:
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
                self.optimizer, milestones=milestone_iters, gamma=self.cfg.scheduler_gamma)

    def reset_data_iterator(self):
        self.train_data_loader_iter = iter(self.train_data_loader)

    def next_batch(self):
        return next(self.train_data_loader_iter)

    def is_first_iteration(self):
        return self.total_iterations == 0

    def is_any_iterations_remaining(self):
        return self.total_iterations < self.max_iterations

    def begin_epoch(self):
        self.reset_data_iterator()
        self.pre_epoch()

    def end_epoch(self):
        self.post_epoch()
        if self.cfg.valid_every > -1 and self.epoch % self.cfg.valid_every == 0 and self.epoch != 0:
            self.validate()
        if self.epoch < self.max_epochs:
            self.iteration = 0
            self.epoch += 1
        else:
            self.is_optimization_running = False

    def iterate(self):
        """``base_trainer.py:316``."""
        if not self.is_optimization_running:
            return
        if self.is_first_iteration():
            self.pre_training()
        try:
            if self.train_data_loader_iter is None:
                self.begin_epoch()
            self.iteration += 1
            data = self.next_batch()
        except StopIteration:
            self.end_epoch()
            if self.is_any_iterations_remaining():
                self.begin_epoch()
                data = self.next_batch()
            else:
                self.post_training()
        if self.is_any_iterations_remaining():
            self.pre_step()
            device_type = torch.device(self.device).type
            with torch.autocast(device_type, enabled=self.enable_amp):
                self.step(data)
            self.post_step()

    def train(self):
        self.is_optimization_running = True
        while self.is_optimization_running:
            self.iterate()
        return self.return_dict

    def pre_training(self):
        self.tracker.metrics.define_metric('total_loss', aggregation_type=float)

    def post_training(self):
        self.tracker.teardown()

    def pre_epoch(self):
        self.pipeline.train()
        self.tracker.metrics.clear()

    def post_epoch(self):
        self.pipeline.eval()
        self.log_console()

    def pre_step(self):
        pass

    def post_step(self):
        pass

    def log_console(self):
        pass

    @property
    def is_optimization_running(self) -> bool:
        return self.scene_state.optimization.running

    @is_optimization_running.setter
    def is_optimization_running(self, value: bool):
        self.scene_state.optimization.running = value

    @property
    def epoch(self) -> int:
        return self.scene_state.optimization.epoch

    @epoch.setter
    def epoch(self, value: int):
        self.scene_state.optimization.epoch = value

    @property
    def iteration(self) -> int:
        return self.scene_state.optimization.iteration

    @iteration.setter
    def iteration(self, value: int):
        self.scene_state.optimization.iteration = value

    @property
    def iterations_per_epoch(self) -> int:
        return self.scene_state.optimization.iterations_per_epoch

    @iterations_per_epoch.setter
    def iterations_per_epoch(self, value: int):
        self.scene_state.optimization.iterations_per_epoch = value

    @property
    def total_iterations(self) -> int:
        return (self.epoch - 1) * self.iterations_per_epoch + self.iteration

    @property
    def max_epochs(self) -> int:
        return self.scene_state.optimization.max_epochs

    @max_epochs.setter
    def max_epochs(self, value: int):
        self.scene_state.optimization.max_epochs = value

    @property
    def max_iterations(self) -> int:
        return self.max_epochs * self.iterations_per_epoch


class MultiviewTrainer(BaseTrainer):
    def __init__(self, cfg, pipeline, train_dataset, validation_dataset, tracker, device='cuda',
                 scene_state: Optional[WispState] = None):
        super().__init__(cfg=cfg, pipeline=pipeline, train_dataset=train_dataset, tracker=tracker,
                         device=device, scene_state=scene_state)
        self.validation_dataset = validation_dataset
        self.validated = 0

    def pre_step(self):
        """``multiview_trainer.py:85``: prune every ``prune_every`` iterations."""
        super().pre_step()
        if self.cfg.prune_every > -1 and self.total_iterations > 1 and \
                self.total_iterations % self.cfg.prune_every == 0:
            self.pipeline.nef.prune()

    def calc_adaptive_rays(self, rays, warmup=False):
        if warmup:
            result = self.pipeline.nef.grid.raymarch(rays, level=self.pipeline.nef.grid.active_lods[-1],
                                                     num_samples=self.pipeline.tracer.num_steps,
                                                     raymarch_type=self.pipeline.tracer.raymarch_type)
            self.pipeline.tracer.prev_num_samples = result.samples.shape[0]
        samples_per_ray = self.pipeline.tracer.get_prev_num_samples() / rays.shape[0]
        num_rays = int(math.floor(min(self.cfg.target_sample_size / max(samples_per_ray, 1), 2**18)))
        if not isinstance(self.train_dataset.transform, SampleRays):
            raise Exception("SampleRays should be used as the transform for the dataset")
        self.train_dataset.transform.set_num_samples(num_rays)

    def step(self, data):
        """``multiview_trainer.py:112``."""
        rays = data['rays'].to(self.device).squeeze(0)
        img_gts = data['rgb'].to(self.device).squeeze(0)
        if self.pipeline.tracer.get_prev_num_samples() is None:
            self.calc_adaptive_rays(rays, warmup=True)
            return
        self.optimizer.zero_grad()
        if self.cfg.random_lod:
            n = self.pipeline.nef.grid.num_lods
            lod_idx = random.choices(list(range(n)), [2**i / (2**n - 1) for i in range(n)])[0]
        else:
            lod_idx = None
        rb = self.pipeline(rays=rays, lod_idx=lod_idx, channels=["rgb"])
        if self.cfg.rgb_loss_type == 'l2':
            rgb_loss = torch.nn.functional.mse_loss(rb.rgb, img_gts, reduction='none')
        elif self.cfg.rgb_loss_type == 'l1':
            rgb_loss = torch.abs(rb.rgb - img_gts)
        else:
            rgb_loss = torch.nn.functional.smooth_l1_loss(rb.rgb, img_gts, reduction='none')
        if self.cfg.rgb_loss_denom == 'samples':
            rgb_loss = rgb_loss.sum() / self.pipeline.tracer.prev_num_samples
        else:
            rgb_loss = rgb_loss.mean()
        loss = rgb_loss
        self.tracker.metrics.total_loss += loss.item()
        self.tracker.metrics.rgb_loss += rgb_loss.item()
        self.tracker.metrics.num_samples += 1
        if self.cfg.enable_amp:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.calc_adaptive_rays(rays, warmup=False)
        if self.cfg.scheduler:
            self.scheduler.step()

    def validate(self):
        self.validated += 1

    def pre_training(self):
        super().pre_training()
        self.tracker.metrics.define_metric('rgb_loss', aggregation_type=float)
