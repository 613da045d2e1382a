"""``wisp.framework.WispState`` (test double): the optimisation and renderer state."""
from __future__ import annotations

import dataclasses
from typing import Any, List


@dataclasses.dataclass
class OptimizationState:
    running: bool = False
    epoch: int = 0
    iteration: int = 0
    iterations_per_epoch: int = 0
    max_epochs: int = 0
    elapsed_time: float = 0.0
    train_data: List[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class InteractiveRendererState:
    device: Any = "cpu"


@dataclasses.dataclass
class GraphState:
    neural_pipelines: dict = dataclasses.field(default_factory=dict)
    cameras: Any = None


@dataclasses.dataclass
class WispState:
    optimization: OptimizationState = dataclasses.field(default_factory=OptimizationState)
    renderer: InteractiveRendererState = dataclasses.field(default_factory=InteractiveRendererState)
    graph: GraphState = dataclasses.field(default_factory=GraphState)
