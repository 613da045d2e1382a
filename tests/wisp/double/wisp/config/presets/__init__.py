"""``wisp.config.presets`` (test double, ``presets/torch.py``)."""
from typing import Tuple

import torch

from wisp.config import configure


@configure(target=torch.optim.Adam)
class ConfigAdam:
    lr: float = 1e-3
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


@configure(target=torch.optim.AdamW)
class ConfigAdamW:
    lr: float = 1e-3
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


@configure(target=torch.optim.RMSprop)
class ConfigRMSprop:
    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0


@configure
class ConfigDataloader:
    batch_size: int
    num_workers: int = 0
