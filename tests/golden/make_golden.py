"""How the golden ``.shac`` files were written (kept as a record; never rerun for a
version that already has files).

Each format version's files were written once, by the code of the commit that wrote
that version, from tiny inputs this script generates (no randomness outside seeded
training). Usage, from a checkout of that commit::

    PYTHONPATH=<checkout> python tests/golden/make_golden.py OUT_DIR

writes ``OUT_DIR/{image,video,scene,image_per_level}.shac`` (with ``--entropy-model
context``, from version 4 on: the same tasks coded with the context model, and
``image_random.shac`` and ``video_random.shac``, seeded random latents that are zero in
half of each dense level, so that neighbour contexts pay, and a one-symbol level), and
``python tests/golden/make_golden.py --manifest`` adds the digests of new files to the
manifest (existing entries are never rewritten). Each folder
``v<version>_<commit>`` holds the files of the writer at that commit (``image_per_level``
random latents, no training; per-level tables from version 2 on). The checksums of their
decoded outputs are recorded in ``tests/golden/manifest.json``; ``tests/test_golden.py``
decodes every file listed there in CI. Folders: ``v1_9a01d5c`` (float16 MLP heads; the
first writer with all three tasks, 738321d, wrote the same bytes), ``v1_846fed1`` (int8
heads), ``v2_5c596a8`` (per-level tables), ``v3_<commit>`` (exact integer coding),
``v4_d42ec47`` (the context model), ``v5_3979a63`` (entropy-coded weights and the
preset CONFIG dictionary: ``image``, ``video``, ``scene`` and ``image_per_level`` from a
plain run, ``image_random`` and ``video_random`` from a ``--entropy-model context`` run
into another folder), ``v5_0cd2e3f`` (``scene_pruned``, ``OUT_DIR --pruned-scene``: a
scene that stores its occupancy cells and codes only the rows read inside them).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "data"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image(work: Path) -> Path:
    yy, xx = np.meshgrid(np.arange(16) + 0.5, np.arange(24) + 0.5, indexing="ij")
    rgb = np.stack([xx / 24, yy / 16, 0.5 + 0.4 * np.sin(xx * yy / 40)], -1)
    path = work / "image.png"
    Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(path)
    return path


def _video(work: Path) -> Path:
    frames = _load("make_demo_video").make_demo_frames(num_frames=4, size=16)
    folder = work / "video"
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{t:05d}.png")
    return folder


def _zero_half_of_dense_levels(grid) -> None:
    """Zero the latents of the first half of each dense level's vertices along its slowest
    axis (and dimension 1 where dimension 0 is zero): structure the contexts can use."""
    import torch

    with torch.no_grad():
        for level, shape in enumerate(grid.layout.shapes):
            if shape:
                start, end = grid.layout.offsets[level], grid.layout.offsets[level + 1]
                block = grid.latents[start:end]
                block[:len(block) // 2] = 0
                block[block[:, 0] == 0, 1] = 0


def _random_video(path: Path) -> None:
    """A video file (3-D grid) of seeded random latents, half of each dense level zero."""
    import dataclasses

    import torch

    from wisp_shacira.codec.model_io import write_shac
    from wisp_shacira.fields.video import VideoField, VideoNefConfig
    from wisp_shacira.grid.shacira_grid import GridConfig

    torch.manual_seed(1)
    grid = GridConfig(num_levels=3, min_res=4, max_res=12, log2_table_size=9, latent_dim=2,
                      entropy_model="context", latent_coder="context")
    nef = VideoNefConfig(hidden_dim=8)
    field = VideoField(grid, nef)
    with torch.no_grad():
        field.grid.latents.copy_(torch.randint(-3, 4, field.grid.latents.shape).float())
    _zero_half_of_dense_levels(field.grid)
    field.round_weights()
    config = {"task": "video", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "video": {"name": "random", "num_frames": 3, "height": 8, "width": 10,
                        "fps": 10.0}}
    write_shac(path, field.to_shac_model(config))


def _per_level_image(path: Path, entropy_model: str = "factorized") -> None:
    """An image file whose levels have very different latent spreads (so the writer keeps
    per-level tables, table mode 1 from version 2 on; with the context model: a dense, a
    hashed and a one-symbol level); seeded random latents, no training."""
    import dataclasses

    import torch

    from wisp_shacira.codec.model_io import write_shac
    from wisp_shacira.fields.image import ImageField, ImageNefConfig
    from wisp_shacira.grid.shacira_grid import GridConfig

    torch.manual_seed(0)
    extra = {"latent_coder": entropy_model}
    if entropy_model != "factorized":
        extra["entropy_model"] = entropy_model
    grid = GridConfig(num_levels=4, min_res=4, max_res=32, log2_table_size=8, latent_dim=2,
                      **extra)
    nef = ImageNefConfig(hidden_dim=8)
    field = ImageField(grid, nef, channels=3)
    with torch.no_grad():
        for level, spread in enumerate((12, 6, 1, 0)):
            start, end = field.grid.layout.offsets[level], field.grid.layout.offsets[level + 1]
            field.grid.latents[start:end] = torch.randint(-spread, spread + 1,
                                                          (end - start, 2)).float()
    if entropy_model != "factorized":
        _zero_half_of_dense_levels(field.grid)
    field.round_weights()
    config = {"task": "image", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "image": {"name": "per_level", "height": 12, "width": 20, "channels": 3,
                        "bit_depth": 8}}
    write_shac(path, field.to_shac_model(config))


def main(out: Path, entropy_model: str = "factorized") -> None:
    from wisp_shacira.config import build_config
    from wisp_shacira.tasks import image, nerf, video
    from wisp_shacira.tasks.nerf_config import AppConfig as NerfConfig

    print("writing with", image.__file__)
    out.mkdir(parents=True, exist_ok=True)
    grid = {"num_levels": 4, "min_res": 4, "max_res": 16, "log2_table_size": 8,
            "feature_dim": 2, "latent_dim": 2, "latent_coder": entropy_model}
    if entropy_model != "factorized":
        grid["entropy_model"] = entropy_model
    trainer = {"iterations": 400, "seed": 0, "lr_mlp": 0.03, "lambda_start": 1e-5,
               "lambda_end": 1e-5}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = build_config(image.AppConfig, {"grid": grid, "nef": {"hidden_dim": 8},
                                             "dataset": {"path": str(_image(work))},
                                             "trainer": {**trainer, "batch_size": 0}})
        image.run(cfg, work / "image_run")
        shutil.copy(work / "image_run" / "image.shac", out / "image.shac")
        cfg = build_config(video.AppConfig, {"grid": grid, "nef": {"hidden_dim": 8},
                                             "dataset": {"path": str(_video(work))},
                                             "trainer": {**trainer, "batch_size": 256}})
        video.run(cfg, work / "video_run")
        shutil.copy(work / "video_run" / "video.shac", out / "video.shac")
        scene = _load("make_demo_scene").make_demo_scene(work / "scene", size=16, n_train=4,
                                                         n_val=1, n_test=1, seed=3, supersample=1)
        cfg = build_config(NerfConfig, {
            "output": str(work / "scene_run"),
            "grid": {**grid, "latent_dim": 1},
            "nef": {"hidden_dim": 8, "geo_feat_dim": 3, "color_hidden_dim": 8,
                    "color_num_layers": 1},
            "tracer": {"num_samples": 8, "chunk_size": 1024},
            "dataset": {"path": str(scene)},
            "trainer": {"iterations": 60, "seed": 0, "rays_per_batch": 64, "occupancy_resolution": 4,
                        "occupancy_every": 4, "occupancy_warmup": 8, "val_every": 0,
                        "checkpoint_every": 0, "rate_sample": 256}})
        nerf.run(cfg, work / "scene_run")
        shutil.copy(work / "scene_run" / "scene.shac", out / "scene.shac")
    if entropy_model == "factorized":
        _per_level_image(out / "image_per_level.shac")
    else:
        _per_level_image(out / "image_random.shac", entropy_model)
        _random_video(out / "video_random.shac")


def pruned_scene(out: Path) -> None:
    """``scene_pruned.shac`` (from 0cd2e3f): the scene of :func:`main` on a 16^3
    occupancy grid (200 steps), written as ``trainer.prune_empty_space`` writes a
    pruned file (stored cells, hashed levels coding only the rows read inside them),
    even though at this size the cells cost more than the rows they save."""
    from wisp_shacira.codec.model_io import read_shac
    from wisp_shacira.config import build_config
    from wisp_shacira.tasks import nerf
    from wisp_shacira.tasks.nerf_config import AppConfig as NerfConfig
    from wisp_shacira.tasks.nerf_eval import load_scene_model

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scene = _load("make_demo_scene").make_demo_scene(work / "scene", size=16, n_train=4,
                                                         n_val=1, n_test=1, seed=3, supersample=1)
        cfg = build_config(NerfConfig, {
            "output": str(work / "run"),
            "grid": {"num_levels": 4, "min_res": 4, "max_res": 16, "log2_table_size": 8,
                     "feature_dim": 2, "latent_dim": 1},
            "nef": {"hidden_dim": 8, "geo_feat_dim": 3, "color_hidden_dim": 8,
                    "color_num_layers": 1},
            "tracer": {"num_samples": 8, "chunk_size": 1024},
            "dataset": {"path": str(scene)},
            "trainer": {"iterations": 200, "seed": 0, "rays_per_batch": 64,
                        "occupancy_resolution": 16, "occupancy_every": 4,
                        "occupancy_warmup": 8, "val_every": 0, "checkpoint_every": 0,
                        "rate_sample": 256, "lr_mlp": 0.03, "lambda_start": 1e-5,
                        "lambda_end": 1e-5, "prune_empty_space": False}})
        nerf.run(cfg, work / "run")
        shac = work / "run" / "scene.shac"
        pruned = nerf.prune_empty_space(load_scene_model(shac).field,
                                        read_shac(shac, max_lod=0).config)
        if not any(m is not None and not m.all() for m in pruned.row_masks):
            raise RuntimeError("no hashed level leaves a row out; choose another scene")
        (out / "scene_pruned.shac").write_bytes(pruned.encode())


def add_to_manifest(root: Path) -> None:
    """Record digests of golden files that the manifest does not list yet, and the field
    digest of entries recorded before it existed; a digest once recorded is never changed
    (a changed decode must fail the test, not the manifest)."""
    import hashlib
    import json

    sys.path.insert(0, str(root))
    from digest import field_digest, model_digest, output_digest

    path = root / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    for shac in sorted(root.glob("v*/*.shac")):
        key = shac.relative_to(root).as_posix()
        if key not in manifest:
            manifest[key] = {"file_sha256": hashlib.sha256(shac.read_bytes()).hexdigest(),
                             "model_sha256": model_digest(shac),
                             "output_sha256": output_digest(shac)}
        manifest[key].setdefault("field_sha256", field_digest(shac))
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--manifest":
        add_to_manifest(Path(__file__).resolve().parent)
    elif sys.argv[2:3] == ["--pruned-scene"]:
        pruned_scene(Path(sys.argv[1]))
    elif sys.argv[2:4] == ["--entropy-model", "context"]:
        main(Path(sys.argv[1]), "context")
    else:
        main(Path(sys.argv[1]))
