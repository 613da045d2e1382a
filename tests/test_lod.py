"""Progressive LOD decoding: prefixes of a file, partial/damaged streams, the sources of
each task against the tasks' own decoders, and the per-LOD analysis."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from wisp_shacira.codec.model_io import write_shac
from wisp_shacira.errors import BitstreamError, ConfigError, DataError
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.fields.nerf import NerfNefConfig, RadianceField
from wisp_shacira.fields.video import VideoField, VideoNefConfig
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.lod import decode_partial, open_source, open_stream, stream_from_bytes
from wisp_shacira.lod_report import analyse, save_plot, save_strip
from wisp_shacira.metrics import psnr
from wisp_shacira.render.tracer import TracerConfig
from wisp_shacira.tasks import protocol
from wisp_shacira.tasks.image import ImageSource, decode_pixels, pixel_coords
from wisp_shacira.tasks.nerf import SceneSource
from wisp_shacira.tasks.nerf_eval import load_scene_model, render_views
from wisp_shacira.tasks.video import VideoSource, decode_frames

LEVELS = 4


def _randomise(field: torch.nn.Module, seed: int) -> None:
    """Seeded integer latents, so every level changes the output."""
    torch.manual_seed(seed)
    with torch.no_grad():
        field.grid.latents.copy_(torch.randint(-3, 4, field.grid.latents.shape).float())
        field.grid.decoder.weight.fill_(0.5)
    field.round_weights()


def image_file(path: Path, height: int = 12, width: int = 16) -> Path:
    grid = GridConfig(num_levels=LEVELS, min_res=4, max_res=32, log2_table_size=8)
    field = ImageField(grid, ImageNefConfig(hidden_dim=8), channels=3)
    _randomise(field, 0)
    config = {"task": "image", "grid": dataclasses.asdict(grid),
              "nef": dataclasses.asdict(ImageNefConfig(hidden_dim=8)),
              "image": {"name": "tiny", "height": height, "width": width, "channels": 3,
                        "bit_depth": 8}}
    write_shac(path, field.to_shac_model(config))
    return path


def video_file(path: Path) -> Path:
    grid = GridConfig(num_levels=3, min_res=4, max_res=16, log2_table_size=8, feature_dim=2)
    nef = VideoNefConfig(hidden_dim=8)
    field = VideoField(grid, nef)
    _randomise(field, 1)
    config = {"task": "video", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "video": {"name": "clip", "num_frames": 3, "height": 8, "width": 10, "fps": 10.0}}
    write_shac(path, field.to_shac_model(config))
    return path


def scene_file(path: Path) -> Path:
    grid = GridConfig(num_levels=3, min_res=4, max_res=16, log2_table_size=10, feature_dim=2)
    nef = NerfNefConfig(hidden_dim=8, geo_feat_dim=3, color_hidden_dim=8, color_num_layers=1,
                        view_degree=2)
    field = RadianceField(grid, nef)
    _randomise(field, 2)
    config = {"task": "nerf", "grid": dataclasses.asdict(grid), "nef": dataclasses.asdict(nef),
              "tracer": dataclasses.asdict(TracerConfig(num_samples=16, chunk_size=4096)),
              "occupancy": {"resolution": 8, "subsamples": 2, "threshold": 0.01},
              "scene": {"name": "tiny", "format": "blender", "mip": 0, "height": 10, "width": 12,
                        "scale": 0.8, "offset": [0.0, 0.0, 0.0]},
              "camera": {"fx": 14.0, "fy": 14.0, "cx": 6.0, "cy": 5.0, "orbit_radius": 2.5,
                         "orbit_height": 1.0}}
    write_shac(path, field.to_shac_model(config))
    return path


def test_lod_bytes_are_the_prefixes_that_hold_each_level(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    data = path.read_bytes()
    stream = open_stream(path)
    assert stream.available == stream.num_levels == LEVELS and stream.warning() is None
    assert stream.lod_bytes == sorted(set(stream.lod_bytes)) and stream.lod_bytes[-1] == len(data)
    for lod, nbytes in enumerate(stream.lod_bytes, start=1):
        assert stream_from_bytes(data[:nbytes], "p", partial=True).available == lod
    for lod, nbytes in enumerate(stream.lod_bytes[1:], start=1):
        assert stream_from_bytes(data[:nbytes - 1], "p", partial=True).available == lod


def test_prefix_decode_equals_masked_full_decode_and_task_decoder(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    data = path.read_bytes()
    full = ImageSource(open_stream(path).model, "full")
    frames = []
    for lod, nbytes in enumerate(open_stream(path).lod_bytes, start=1):
        prefix = stream_from_bytes(data[:nbytes], "prefix", partial=True)
        assert prefix.warning() is None if lod == LEVELS else "truncated" in prefix.warning()
        from_prefix = ImageSource(prefix.model, "prefix").full_frame(lod)
        assert np.array_equal(from_prefix, full.full_frame(lod))
        assert np.array_equal(from_prefix, decode_pixels(path, max_lod=lod)[0])
        frames.append(from_prefix)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_truncated_and_corrupt_streams_keep_their_intact_levels(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    data = bytearray(path.read_bytes())
    ends = open_stream(path).lod_bytes
    cut = stream_from_bytes(bytes(data[:ends[2] - 5]), "cut", partial=True)
    assert cut.available == 2 and "truncated" in cut.warning() and "1..2 of 4" in cut.warning()
    data[ends[1] + 12] ^= 0xFF
    damaged = stream_from_bytes(bytes(data), "bad", partial=True)
    assert damaged.available == 2 and "checksum" in damaged.warning()
    with pytest.raises(BitstreamError, match="checksum"):
        stream_from_bytes(bytes(data), "bad")
    with pytest.raises(BitstreamError, match="no complete latent level"):
        stream_from_bytes(bytes(data[:ends[0] - 1]), "head", partial=True)
    with pytest.raises(BitstreamError, match="too short"):
        stream_from_bytes(bytes(data[:40]), "tiny", partial=True)


def test_bad_lod_and_wrong_kind_of_file(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    for bad in (0, LEVELS + 1):
        with pytest.raises(ConfigError, match="max-lod"):
            open_stream(path, max_lod=bad)
    stream = open_stream(path, max_lod=2)
    assert stream.available == 2 and stream.warning() is None
    with pytest.raises(ConfigError, match="LOD 3 is out of range"):
        stream.check_lod(3)
    png = tmp_path / "x.png"
    iio.imwrite(png, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(BitstreamError, match="not a .shac file"):
        open_stream(png)


def test_video_source_matches_the_video_decoder(tmp_path) -> None:
    path = video_file(tmp_path / "clip.shac")
    source = open_source(open_stream(path))
    assert isinstance(source, VideoSource) and isinstance(source, protocol.PlanarSource)
    coords = pixel_coords(source.height, source.width)
    for lod in (1, 3):
        frames = source.frames(lod)
        assert np.array_equal(frames, decode_frames(path, max_lod=lod)[0])
        colours = torch.round(source.colours(coords, lod, 1) * 255).reshape(frames[1].shape)
        assert np.array_equal(colours.numpy().astype(np.uint8), frames[1])


def test_scene_source_matches_the_scene_decoder(tmp_path) -> None:
    path = scene_file(tmp_path / "scene.shac")
    source = open_source(open_stream(path))
    assert isinstance(source, SceneSource) and isinstance(source, protocol.SceneSource)
    c2w, intr = source.default_view()
    for lod in (1, 3, 2):
        mine = source.render(lod, c2w, intr, 10, 12)
        scene = load_scene_model(path, max_lod=lod)
        assert np.array_equal(mine, render_views(scene, c2w, intr, 10, 12))


def test_decode_partial_writes_what_the_stream_holds(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    data = path.read_bytes()
    cut = tmp_path / "cut.shac"
    cut.write_bytes(data[:open_stream(path).lod_bytes[1] + 3])
    out, stream = decode_partial(cut, tmp_path / "out")
    assert out == tmp_path / "out" / "cut.png" and stream.available == 2
    expected = np.round(decode_pixels(path, max_lod=2)[0] * 255).astype(np.uint8)
    assert np.array_equal(iio.imread(out), expected)


def test_analyse_image_against_a_reference(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    reference = tmp_path / "ref.png"
    iio.imwrite(reference, np.full((12, 16, 3), 128, np.uint8))
    report = analyse(path, reference=reference)
    assert [r.lod for r in report.rows] == list(range(1, LEVELS + 1))
    assert [r.bytes for r in report.rows] == open_stream(path).lod_bytes
    top = psnr(decode_pixels(path)[0], np.full((12, 16, 3), 128 / 255.0))
    assert report.rows[-1].psnr == pytest.approx(top)
    assert report.warning is None and "ref.png" in report.reference
    summary = json.loads(json.dumps(report.to_json()))
    assert summary["levels_held"] == LEVELS and summary["lods"][-1]["fraction"] == 1.0
    save_plot(report, tmp_path / "plot.png")
    save_strip(report, tmp_path / "strip.png", tile_height=24, columns=3)
    assert iio.imread(tmp_path / "plot.png").ndim == 3
    assert iio.imread(tmp_path / "strip.png").shape[1] == 3 * (32 + 4) + 4
    with pytest.raises(DataError, match="shape"):
        iio.imwrite(reference, np.zeros((5, 5, 3), np.uint8))
        analyse(path, reference=reference)


def test_the_strip_of_a_panorama_stays_small(tmp_path) -> None:
    """Tiles fit ``tile_height`` high and four times that wide, whatever the aspect."""
    report = analyse(image_file(tmp_path / "img.shac"))
    report.previews = [np.zeros((12, 65536, 3), np.uint8)] * len(report.previews)
    save_strip(report, tmp_path / "strip.png", tile_height=24, columns=2)
    height, width = iio.imread(tmp_path / "strip.png").shape[:2]
    rows = -(-len(report.previews) // 2)
    assert (height, width) == (rows * (1 + 34 + 4) + 4, 2 * (96 + 4) + 4)   # 96 x 1 tiles


def test_analyse_truncated_file_without_reference(tmp_path) -> None:
    path = image_file(tmp_path / "img.shac")
    cut = tmp_path / "cut.shac"
    cut.write_bytes(path.read_bytes()[:open_stream(path).lod_bytes[2] + 1])
    report = analyse(cut)
    assert len(report.rows) == 3 and "truncated" in report.warning
    assert math.isinf(report.rows[-1].psnr) and all(math.isfinite(r.psnr) for r in report.rows[:-1])
    assert report.to_json()["lods"][-1]["psnr"] is None


def test_analyse_scene_and_video_without_reference(tmp_path) -> None:
    scene = analyse(scene_file(tmp_path / "scene.shac"))
    assert len(scene.rows) == 3 and scene.previews[0].shape == (10, 12, 3)
    video = analyse(video_file(tmp_path / "clip.shac"))
    assert len(video.rows) == 3 and video.previews[0].shape == (8, 10, 3)
    with pytest.raises(ConfigError, match="--poses"):
        analyse(tmp_path / "clip.shac", poses=tmp_path / "t.json")
