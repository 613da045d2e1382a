"""How ``tests/golden/wisp_nerf_v<version>_<commit>/scene.shac`` was written by the code of
that commit (a record; never rerun for a folder that exists; version 3 at 43c22df, 5 at
3979a63): the Kaolin-Wisp adapter, run against the test double of Wisp,
exports a tiny radiance field with seeded random latents and the demo scene's camera.

    python tests/golden/make_wisp_golden.py OUT_DIR      # writes OUT_DIR/scene.shac
    python tests/golden/make_wisp_golden.py --manifest OUT_DIR   # prints its manifest entry

``tests/wisp/test_wisp_golden.py`` checks the file's digest and the digests of its
renders (the manifest in the folder), so that a change to how these files decode fails.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def write(out_dir: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "wisp" / "double"))
    from wisp.accelstructs import OctreeAS
    from wisp.models.nefs import NeuralRadianceField
    from wisp_shacira.fields.wisp_bridge import nef_config_of
    from wisp_shacira.resources import demo_data
    from wisp_shacira.tasks.nerf_config import NerfDatasetConfig
    from wisp_shacira.tasks.wisp_nerf import file_sections, scene_sections
    from wisp_shacira.wisp import ShaciraGrid
    torch.manual_seed(0)
    grid = ShaciraGrid.from_geometric(OctreeAS.make_dense(2), feature_dim=2, num_lods=4,
                                      codebook_bitwidth=9, min_grid_res=4, max_grid_res=16,
                                      latent_init=0.6, prior_init_scale=4.0)
    nef = NeuralRadianceField(grid, view_embedder="positional", view_multires=2, hidden_dim=16,
                              bias=True).eval()
    with torch.no_grad():
        grid.core.latents.copy_(torch.randint(-3, 4, grid.core.latents.shape).float())
        for param in nef.decoder_density.parameters():
            param.mul_(4.0)
    scene = scene_sections(NerfDatasetConfig(path=str(demo_data("demo_scene")), mip=1))
    sections = file_sections(nef_config_of(nef), "cat", {"nef": {"hidden_dim": 16}},
                             (1.0, 1.0, 1.0), 48, scene)
    sections["occupancy"]["resolution"] = 16
    path = out_dir / "scene.shac"
    grid.export(path, nef, sections)
    return path


def renders(path: Path) -> dict:
    """Digests of the file's first turntable view at LOD 1 and at all levels (16 x 16)."""
    from wisp_shacira.lod import open_source, open_stream
    source = open_source(open_stream(path))
    c2w, intr = source.default_view()
    intr = intr * torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    return {f"render_lod{lod}_sha256": hashlib.sha256(np.ascontiguousarray(
        source.render(lod, c2w, intr, 16, 16)).tobytes()).hexdigest() for lod in (1, 4)}


if __name__ == "__main__":
    if sys.argv[1] == "--manifest":
        file = Path(sys.argv[2]) / "scene.shac"
        entry = {"file_sha256": hashlib.sha256(file.read_bytes()).hexdigest(), **renders(file)}
        print(json.dumps({"scene.shac": entry}, indent=2))
    else:
        print(write(Path(sys.argv[1])))
