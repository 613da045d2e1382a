"""Test double of pyimgui: records sliders and texts; ``ANSWERS`` feeds slider results."""
from __future__ import annotations

import types

SLIDERS: list = []
TEXTS: list = []
ANSWERS: list = []
TREE_NODE_DEFAULT_OPEN = 32


def _slider_int(label: str, value: int, min_value: int, max_value: int) -> tuple[bool, int]:
    SLIDERS.append((label, value, min_value, max_value))
    return ANSWERS.pop(0) if ANSWERS else (False, value)


core = types.SimpleNamespace(slider_int=_slider_int)


def text(value: str) -> None:
    TEXTS.append(value)
