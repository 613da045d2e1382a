"""Record the real Kaolin-Wisp signatures the double mirrors (run against a Wisp checkout).

    python tests/wisp/double/record_signatures.py /path/to/kaolin-wisp > tests/wisp/double/real_signatures.json

Reads the source with ``ast`` (no import, no CUDA): parameter names and default values
of each listed function, with its file and line.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

SYMBOLS = {
    "wisp.models.grids.BLASGrid.__init__": "wisp/models/grids/blas_grid.py",
    "wisp.models.grids.BLASGrid.interpolate": "wisp/models/grids/blas_grid.py",
    "wisp.models.grids.HashGrid.__init__": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.HashGrid.from_geometric": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.HashGrid.from_octree": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.HashGrid.from_resolutions": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.HashGrid.interpolate": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.HashGrid.raymarch": "wisp/models/grids/hash_grid.py",
    "wisp.models.grids.OctreeGrid.__init__": "wisp/models/grids/octree_grid.py",
    "wisp.models.grids.TriplanarGrid.__init__": "wisp/models/grids/triplanar_grid.py",
    "wisp.models.nefs.NeuralRadianceField.__init__": "wisp/models/nefs/nerf.py",
    "wisp.models.nefs.NeuralRadianceField.rgba": "wisp/models/nefs/nerf.py",
    "wisp.models.nefs.NeuralRadianceField.prune": "wisp/models/nefs/nerf.py",
    "wisp.models.nefs.NeuralRadianceField.init_embedder": "wisp/models/nefs/nerf.py",
    "wisp.models.nefs.NeuralRadianceField.init_decoders": "wisp/models/nefs/nerf.py",
    "wisp.models.nefs.BaseNeuralField.forward": "wisp/models/nefs/base_nef.py",
    "wisp.models.decoders.BasicDecoder.__init__": "wisp/models/decoders/basic_decoders.py",
    "wisp.models.decoders.BasicDecoder.forward": "wisp/models/decoders/basic_decoders.py",
    "wisp.models.embedders.PositionalEmbedder.__init__": "wisp/models/embedders/positional_embedder.py",
    "wisp.models.embedders.get_positional_embedder": "wisp/models/embedders/positional_embedder.py",
    "wisp.models.activations.get_activation_class": "wisp/models/activations/basic_activations.py",
    "wisp.models.layers.get_layer_class": "wisp/models/layers.py",
    "wisp.accelstructs.OctreeAS.__init__": "wisp/accelstructs/octree_as.py",
    "wisp.accelstructs.OctreeAS.make_dense": "wisp/accelstructs/octree_as.py",
    "wisp.accelstructs.OctreeAS.from_pointcloud": "wisp/accelstructs/octree_as.py",
    "wisp.accelstructs.OctreeAS.from_quantized_points": "wisp/accelstructs/octree_as.py",
    "wisp.tracers.PackedRFTracer.__init__": "wisp/tracers/packed_rf_tracer.py",
    "wisp.tracers.PackedRFTracer.trace": "wisp/tracers/packed_rf_tracer.py",
    "wisp.tracers.BaseTracer.forward": "wisp/tracers/base_tracer.py",
    "wisp.trainers.BaseTrainer.__init__": "wisp/trainers/base_trainer.py",
    "wisp.trainers.BaseTrainer.init_optimizer": "wisp/trainers/base_trainer.py",
    "wisp.trainers.BaseTrainer.iterate": "wisp/trainers/base_trainer.py",
    "wisp.trainers.BaseTrainer.pre_step": "wisp/trainers/base_trainer.py",
    "wisp.trainers.BaseTrainer.post_training": "wisp/trainers/base_trainer.py",
    "wisp.trainers.BaseTrainer.log_console": "wisp/trainers/base_trainer.py",
    "wisp.trainers.MultiviewTrainer.__init__": "wisp/trainers/multiview_trainer.py",
    "wisp.trainers.MultiviewTrainer.step": "wisp/trainers/multiview_trainer.py",
    "wisp.trainers.MultiviewTrainer.pre_step": "wisp/trainers/multiview_trainer.py",
    "wisp.trainers.tracker.Tracker.__init__": "wisp/trainers/tracker/tracker.py",
    "wisp.trainers.tracker.Tracker.get_app_config": "wisp/trainers/tracker/tracker.py",
    "wisp.renderer.core.renderers.NeuralRadianceFieldPackedRenderer.__init__":
        "wisp/renderer/core/renderers/radiance_pipeline_renderer.py",
    "wisp.renderer.core.renderers.NeuralRadianceFieldPackedRenderer.pre_render":
        "wisp/renderer/core/renderers/radiance_pipeline_renderer.py",
    "wisp.renderer.core.renderers.NeuralRadianceFieldPackedRenderer.render":
        "wisp/renderer/core/renderers/radiance_pipeline_renderer.py",
    "wisp.renderer.core.renderers.NeuralRadianceFieldPackedRenderer.needs_refresh":
        "wisp/renderer/core/renderers/radiance_pipeline_renderer.py",
    "wisp.renderer.core.renderers.NeuralRadianceFieldPackedRenderer.post_render":
        "wisp/renderer/core/renderers/radiance_pipeline_renderer.py",
    "wisp.config.configure": "wisp/config/utils.py",
    "wisp.config.autoconfig": "wisp/config/utils.py",
    "wisp.config.instantiate": "wisp/config/utils.py",
    "wisp.config.parse_config": "wisp/config/utils.py",
}


def _default(node: ast.expr | None) -> str | None:
    return None if node is None else ast.unparse(node)


def record(root: Path) -> dict:
    out = {}
    for symbol, rel in SYMBOLS.items():
        tree = ast.parse((root / rel).read_text())
        parts = symbol.split(".")
        owner = parts[-2] if parts[-2][0].isupper() else None
        for node in ast.walk(tree):
            scope = node if owner is None else None
            if owner is not None and isinstance(node, ast.ClassDef) and node.name == owner:
                scope = node
            if scope is None:
                continue
            body = scope.body if owner is not None else [scope]
            for fn in body:
                if isinstance(fn, ast.FunctionDef) and fn.name == parts[-1]:
                    args = fn.args.posonlyargs + fn.args.args
                    defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
                    params = [[a.arg, _default(d)] for a, d in zip(args, defaults)]
                    params += [[a.arg, _default(d)] for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults)]
                    out[symbol] = {"file": rel, "line": fn.lineno, "params": params}
            if symbol in out:
                break
    return out


if __name__ == "__main__":
    print(json.dumps(record(Path(sys.argv[1])), indent=1))
