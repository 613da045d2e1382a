"""wisp-shacira: SHACIRA compressed hash grids for images, videos and radiance fields.

Public API::

    from wisp_shacira import ShaciraGrid, GridConfig, read_shac, write_shac

Tasks (image, video, nerf) live in :mod:`wisp_shacira.tasks`; the Kaolin-Wisp adapter in
:mod:`wisp_shacira.wisp` (needs kaolin and kaolin-wisp, imported only on request).
"""
from wisp_shacira.codec.model_io import ShacModel, read_shac, write_shac
from wisp_shacira.errors import BitstreamError, ConfigError, DataError, ShaciraError
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

__all__ = ["ShaciraGrid", "GridConfig", "ShacModel", "read_shac", "write_shac",
           "ShaciraError", "ConfigError", "DataError", "BitstreamError"]
__version__ = "0.1.0"
