"""wisp-shacira: SHACIRA compressed hash grids for images, videos and radiance fields.

Public API::

    from wisp_shacira import ShaciraGrid, GridConfig, read_shac, write_shac

Tasks (image, video, nerf) live in :mod:`wisp_shacira.tasks`; the Kaolin-Wisp adapter in
:mod:`wisp_shacira.wisp` (needs kaolin and kaolin-wisp, imported only on request).

The names above are loaded on first use (module ``__getattr__``), so importing the
package, or a torch-free part of it such as :mod:`wisp_shacira.codec`, does not import
torch: ``ShaciraGrid`` and ``GridConfig`` bring in torch, ``ShacModel``, ``read_shac`` and
``write_shac`` only numpy and constriction. The errors are plain imports (stdlib only).

Importing the package before torch sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set:
OpenMP threads that spin while idle made training 5-10x slower where numba kernels and
torch share a small CPU. Set the variable yourself to choose otherwise.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from wisp_shacira.errors import BitstreamError, ConfigError, DataError, ShaciraError  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from wisp_shacira.codec.model_io import ShacModel, read_shac, write_shac  # noqa: F401
    from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid  # noqa: F401

_LAZY = {
    "ShacModel": "wisp_shacira.codec.model_io",
    "read_shac": "wisp_shacira.codec.model_io",
    "write_shac": "wisp_shacira.codec.model_io",
    "GridConfig": "wisp_shacira.grid.shacira_grid",
    "ShaciraGrid": "wisp_shacira.grid.shacira_grid",
}

__all__ = ["ShaciraGrid", "GridConfig", "ShacModel", "read_shac", "write_shac",
           "ShaciraError", "ConfigError", "DataError", "BitstreamError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Load a public name of :data:`_LAZY` from its module on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
