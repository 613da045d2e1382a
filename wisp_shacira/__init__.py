"""wisp-shacira: SHACIRA compressed hash grids for images, videos and radiance fields.

Public API::

    from wisp_shacira import ShaciraGrid, GridConfig, read_shac, write_shac

Tasks (image, video, nerf) live in :mod:`wisp_shacira.tasks`; the Kaolin-Wisp adapter in
:mod:`wisp_shacira.wisp` (needs kaolin and kaolin-wisp, imported only on request).

Importing the package before torch sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set:
OpenMP threads that spin while idle made training 5-10x slower where numba kernels and
torch share a small CPU. Set the variable yourself to choose otherwise.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from wisp_shacira.codec.model_io import ShacModel, read_shac, write_shac  # noqa: E402
from wisp_shacira.errors import BitstreamError, ConfigError, DataError, ShaciraError  # noqa: E402
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid  # noqa: E402

__all__ = ["ShaciraGrid", "GridConfig", "ShacModel", "read_shac", "write_shac",
           "ShaciraError", "ConfigError", "DataError", "BitstreamError"]
__version__ = "0.1.0"
