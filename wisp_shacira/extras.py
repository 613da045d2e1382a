"""Optional dependencies ("extras" of the wisp-shacira distribution), imported at use.

The core install trains, exports, decodes and renders every task; heavier features
import their package through :func:`require`, which names the extra to install when the
package is missing::

    av = require("av", "video", "writing MP4 video")

raises, without av, ``MissingExtraError: writing MP4 video needs the optional package
'av' (not installed): pip install 'wisp-shacira[video]'``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from wisp_shacira.errors import MissingExtraError

DISTRIBUTIONS = {"skimage": "scikit-image", "OpenEXR": "OpenEXR", "av": "av",
                 "matplotlib": "matplotlib", "viser": "viser", "numba": "numba",
                 "tensorboard": "tensorboard"}
"""Top-level module -> the PyPI distribution that provides it (for messages)."""


def install_command(extra: str) -> str:
    """The exact command that installs ``extra``: ``pip install 'wisp-shacira[EXTRA]'``."""
    return f"pip install 'wisp-shacira[{extra}]'"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (dotted names allowed) or raise :class:`MissingExtraError`.

    Args:
        module: the module to import, e.g. ``"skimage.metrics"``.
        extra: the extra of ``pyproject.toml`` that installs it, e.g. ``"metrics"``.
        purpose: what needs it, starting the one-line message (``"SSIM"``).

    Raises:
        MissingExtraError: the module (or something it imports) cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        dist = DISTRIBUTIONS.get(top, top)
        missing = getattr(exc, "name", None)
        if isinstance(exc, ModuleNotFoundError) and missing in (top, module):
            reason = "not installed"
        else:                        # installed but broken (a missing dependency, ABI, ...)
            reason = f"cannot be imported: {exc}"
        raise MissingExtraError(f"{purpose} needs the optional package '{dist}' ({reason}): "
                                f"{install_command(extra)}", name=top) from exc


def available(module: str) -> bool:
    """Whether ``module`` imports (imports it; a missing or broken package gives False)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
