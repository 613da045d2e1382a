"""Test-wide settings: one torch thread (tiny tensors; avoids oversubscription on
small CI machines) and no progress bars in captured output."""
from __future__ import annotations

import os

import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)
