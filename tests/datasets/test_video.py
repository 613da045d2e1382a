"""Tests of video loading, saving and sampling on tiny generated clips."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from wisp_shacira.datasets.video import (
    VideoSampler,
    coords_of,
    frame_coords,
    load_video,
    load_video_with_info,
    save_video,
)
from wisp_shacira.errors import ConfigError, DataError

T, H, W = 8, 32, 32


def make_clip() -> np.ndarray:
    """``[T, H, W, 3] uint8`` smooth clip whose frames differ (frame index in the red level)."""
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    frames = np.empty((T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, ..., 0] = 20 + 25 * t
        frames[t, ..., 1] = 4 * yy + 40
        frames[t, ..., 2] = (4 * ((xx + 2 * t) % W)).astype(np.uint8)
    return frames


def write_mp4(frames: np.ndarray, path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        stream.options = {"crf": "0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.fixture()
def clip() -> np.ndarray:
    return make_clip()


@pytest.fixture()
def mp4_path(tmp_path: Path, clip: np.ndarray) -> Path:
    path = tmp_path / "clip.mp4"
    write_mp4(clip, path)
    return path


@pytest.fixture()
def png_dir(tmp_path: Path, clip: np.ndarray) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(clip):
        Image.fromarray(frame).save(folder / f"f{t}.png")  # f10 would sort after f9
    return folder


def test_load_png_folder_exact(png_dir: Path, clip: np.ndarray) -> None:
    frames, info = load_video_with_info(png_dir)
    assert frames.dtype == np.uint8 and frames.shape == (T, H, W, 3)
    np.testing.assert_array_equal(frames, clip)
    assert info.num_frames == T and info.frame_indices == tuple(range(T))


def test_natural_sort(tmp_path: Path) -> None:
    for t in range(12):
        Image.new("RGB", (4, 4), (t * 20, 0, 0)).save(tmp_path / f"f{t}.png")
    frames = load_video(tmp_path)
    assert list(frames[:, 0, 0, 0]) == [t * 20 for t in range(12)]


def test_load_mp4_close_to_source(mp4_path: Path, clip: np.ndarray) -> None:
    frames, info = load_video_with_info(mp4_path)
    assert frames.dtype == np.uint8 and frames.shape == (T, H, W, 3)
    assert np.abs(frames.astype(int) - clip).max() <= 4
    assert info.fps == pytest.approx(10.0)
    assert info.num_frames == T


@pytest.mark.parametrize("source", ["mp4", "png"])
def test_range_stride_downscale(
    source: str, mp4_path: Path, png_dir: Path, clip: np.ndarray
) -> None:
    path = mp4_path if source == "mp4" else png_dir
    frames, info = load_video_with_info(path, frame_start=1, frame_end=7, stride=2, downscale=2)
    assert frames.shape == (3, H // 2, W // 2, 3)
    assert info.frame_indices == (1, 3, 5)
    expected = clip[1:7:2].reshape(3, H // 2, 2, W // 2, 2, 3).mean(axis=(2, 4))
    assert np.abs(frames.astype(float) - expected).max() <= 4


def test_downscale_is_area_mean(png_dir: Path, clip: np.ndarray) -> None:
    frames = load_video(png_dir, downscale=4)
    expected = np.round(clip.reshape(T, H // 4, 4, W // 4, 4, 3).mean(axis=(2, 4)) + 1e-9)
    np.testing.assert_array_equal(frames, expected.astype(np.uint8))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_video(tmp_path / "nope.mp4")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty.mp4"):
        load_video(path)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"this is not a video" * 50)
    with pytest.raises(DataError, match="junk.mp4"):
        load_video(path)


def test_video_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height = W, H
    with pytest.raises(DataError, match="zero.mkv"):
        load_video(path)


@pytest.mark.parametrize("source", ["mp4", "png"])
def test_range_past_end(source: str, mp4_path: Path, png_dir: Path) -> None:
    path = mp4_path if source == "mp4" else png_dir
    with pytest.raises(DataError, match="has 8 frames"):
        load_video(path, frame_start=2, frame_end=20)
    with pytest.raises(DataError, match="has 8 frames"):
        load_video(path, frame_start=8)


def test_bad_arguments(png_dir: Path) -> None:
    with pytest.raises(ConfigError):
        load_video(png_dir, stride=0)
    with pytest.raises(ConfigError):
        load_video(png_dir, frame_start=3, frame_end=3)
    with pytest.raises(ConfigError):
        load_video(png_dir, downscale=0)


def test_mixed_sizes(png_dir: Path) -> None:
    Image.new("RGB", (16, 16)).save(png_dir / "f5.png")
    with pytest.raises(DataError, match="f5.png"):
        load_video(png_dir)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no PNG or JPEG"):
        load_video(tmp_path)


def test_gray_and_rgba(tmp_path: Path) -> None:
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.new("L", (8, 8), 77).save(gray / "0.png")
    frames = load_video(gray)
    assert frames.shape == (1, 8, 8, 3) and (frames == 77).all()
    rgba = tmp_path / "rgba"
    rgba.mkdir()
    Image.new("RGBA", (8, 8), (10, 20, 30, 40)).save(rgba / "0.png")
    with pytest.warns(UserWarning, match="alpha"):
        frames = load_video(rgba)
    assert frames.shape == (1, 8, 8, 3) and (frames[0, 0, 0] == [10, 20, 30]).all()


def test_save_png_folder_roundtrip(tmp_path: Path, clip: np.ndarray) -> None:
    out = save_video(clip, tmp_path / "out", fps=10)
    assert sorted(p.name for p in out.iterdir())[:2] == ["frame_00000.png", "frame_00001.png"]
    np.testing.assert_array_equal(load_video(out), clip)
    save_video(clip[:3], out)  # replaces the folder, no stale frames
    assert len(list(out.iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_save_mp4_roundtrip(tmp_path: Path, clip: np.ndarray) -> None:
    out = save_video(clip, tmp_path / "sub" / "out.mp4", fps=12)
    frames, info = load_video_with_info(out)
    assert frames.shape == clip.shape
    assert np.abs(frames.astype(int) - clip).max() <= 4
    assert info.fps == pytest.approx(12.0)
    assert [p.name for p in out.parent.iterdir()] == ["out.mp4"]


def test_sampler_covers_all_frames() -> None:
    sampler = VideoSampler(T, H, W, batch_size=3, seed=1)
    seen = np.concatenate([sampler.sample()[:, 0] for _ in range(3)])
    assert sorted(seen[:T].tolist()) == list(range(T))  # the first T samples visit every frame once
    big = VideoSampler(T, H, W, batch_size=64, seed=0)
    batch = big.sample()
    assert batch.shape == (64, 3) and batch.dtype == np.int64
    assert np.bincount(batch[:, 0], minlength=T).tolist() == [8] * T
    assert (batch[:, 1] < H).all() and (batch[:, 2] < W).all() and (batch >= 0).all()
    epoch = list(big)
    assert len(epoch) == big.steps_per_epoch == T * H * W // 64


def test_coords_in_unit_cube() -> None:
    sampler = VideoSampler(T, H, W, batch_size=1000, seed=0)
    coords = sampler.coords_of(sampler.sample())
    assert coords.dtype == np.float32 and coords.shape == (1000, 3)
    assert (coords > 0).all() and (coords < 1).all()
    corner = coords_of(np.array([[0, 0, 0], [T - 1, H - 1, W - 1]]), T, H, W)
    np.testing.assert_allclose(corner[0], [0.5 / W, 0.5 / H, 0.5 / T])
    np.testing.assert_allclose(corner[1], [1 - 0.5 / W, 1 - 0.5 / H, 1 - 0.5 / T])


def test_frame_coords() -> None:
    coords = frame_coords(3, T, H, W)
    assert coords.shape == (H * W, 3) and coords.dtype == np.float32
    np.testing.assert_allclose(coords[:, 2], 3.5 / T)
    np.testing.assert_allclose(coords[1], [1.5 / W, 0.5 / H, 3.5 / T])
    with pytest.raises(ValueError):
        frame_coords(T, T, H, W)
