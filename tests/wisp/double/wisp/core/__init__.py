"""``wisp.core`` (test double): ``WispModule``, ``Rays``, ``RenderBuffer``."""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, Dict, Optional

import torch
from torch import nn


class WispModule(nn.Module, ABC):
    """As ``wisp/core/wisp_module.py``: ``name()`` defaults to the class name;
    ``public_properties()`` is abstract."""

    def __init__(self):
        super().__init__()

    def name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def public_properties(self) -> Dict[str, Any]:
        raise NotImplementedError("Wisp modules should implement the `public_properties` method")


@dataclasses.dataclass
class Rays:
    """Ray origins and directions ``[N, 3]`` with near/far distances (``wisp/core/rays.py``)."""

    origins: torch.Tensor
    dirs: torch.Tensor
    dist_min: float = 0.0
    dist_max: float = 6.0

    @property
    def shape(self) -> torch.Size:
        return self.origins.shape[:-1]

    def split(self, split_size: int) -> list:
        return [Rays(o, d, self.dist_min, self.dist_max)
                for o, d in zip(self.origins.split(split_size), self.dirs.split(split_size))]

    def to(self, *args: Any, **kwargs: Any) -> Rays:
        return Rays(self.origins.to(*args, **kwargs), self.dirs.to(*args, **kwargs),
                    self.dist_min, self.dist_max)

    def squeeze(self, dim: int) -> Rays:
        return Rays(self.origins.squeeze(dim), self.dirs.squeeze(dim), self.dist_min, self.dist_max)

    def reshape(self, *shape: int) -> Rays:
        return Rays(self.origins.reshape(*shape), self.dirs.reshape(*shape), self.dist_min,
                    self.dist_max)


class RenderBuffer:
    """Channels of a render; ``+=`` concatenates batches (None channels stay None)."""

    def __init__(self, **channels: Optional[torch.Tensor]) -> None:
        self.channels = dict(channels)

    def __getattr__(self, name: str) -> Any:
        channels = self.__dict__.get("channels", {})
        if name in channels:
            return channels[name]
        raise AttributeError(name)

    def __add__(self, other: RenderBuffer) -> RenderBuffer:
        keys = set(self.channels) | set(other.channels)
        out = {}
        for key in keys:
            a, b = self.channels.get(key), other.channels.get(key)
            out[key] = b if a is None else a if b is None else torch.cat([a, b], dim=0)
        return RenderBuffer(**out)

    def reshape(self, *shape: int) -> RenderBuffer:
        out = {}
        for key, value in self.channels.items():
            if value is None:
                out[key] = None
            else:
                out[key] = value.reshape(*shape[:-1], -1) if shape[-1] == -1 else value.reshape(*shape)
        return RenderBuffer(**out)

    def scale(self, size: tuple) -> RenderBuffer:
        raise NotImplementedError("the test double renders at the output resolution")
