"""Video task end to end on a tiny generated clip, decoded in a fresh process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wisp_shacira.cli.main import main as cli_main
from wisp_shacira.codec.model_io import read_shac
from wisp_shacira.config import build_config
from wisp_shacira.datasets.video import VideoSampler, load_video
from wisp_shacira.errors import BitstreamError, ConfigError, DataError
from wisp_shacira.tasks import video
from wisp_shacira.tasks.video import AppConfig, decode, decode_frames, run

ROOT = Path(__file__).resolve().parents[2]
T, H, W = 8, 32, 32
TINY = {"grid": {"num_levels": 4, "min_res": 2, "max_res": 16, "log2_table_size": 10,
                 "feature_dim": 2},
        "nef": {"hidden_dim": 16},
        "trainer": {"iterations": 100, "log_every": 1000, "lr_latents": 0.05, "lr_mlp": 0.01,
                    "batch_size": 2048}}


def make_clip() -> np.ndarray:
    """``[T, H, W, 3] uint8``: smooth gradients that drift with time."""
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    frames = np.empty((T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, ..., 0] = 40 + 20 * t
        frames[t, ..., 1] = 60 + 4 * yy
        frames[t, ..., 2] = 30 + 5 * ((xx + t) % W)
    return frames


def write_frames(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"f{index}.png")
    return folder


def tiny_config(path: Path, **trainer) -> AppConfig:
    data = {**TINY, "dataset": {"path": str(path)},
            "trainer": {**TINY["trainer"], **trainer}}
    return build_config(AppConfig, data)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[dict, Path, np.ndarray]:
    """One short training run shared by the end-to-end tests: (report, .shac path, clip)."""
    root = tmp_path_factory.mktemp("video")
    clip = make_clip()
    source = write_frames(root / "clip", clip)
    report = run(tiny_config(source), root / "out")
    return report, root / "out" / "clip.shac", clip


def test_report_is_honest(trained) -> None:
    report, shac, _ = trained
    assert (report["frames"], report["height"], report["width"]) == (T, H, W)
    assert report["bytes"] == shac.stat().st_size
    assert report["bpp"] == pytest.approx(shac.stat().st_size * 8 / (T * H * W))
    assert report["decode_matches"]
    assert report["psnr"] == pytest.approx(report["psnr_before_export"])
    assert report["psnr"] > 18 and 0 < report["ssim"] <= 1  # a constant colour gets 15.7 dB
    assert report["encode_seconds_per_frame"] == pytest.approx(report["encode_seconds"] / T)
    assert (shac.parent / "metrics.json").exists() and (shac.parent / "clip.mp4").exists()
    assert "PSNR" in video.summary(report)


def test_decode_in_fresh_process_matches(trained, tmp_path: Path) -> None:
    _, shac, _ = trained
    frames, meta, _ = decode_frames(shac)
    assert frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    assert meta.name == "clip" and meta.num_frames == T
    result = _cli("-m", "wisp_shacira.cli.main", "decode", str(shac), "-o", str(tmp_path / "dec"))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(load_video(tmp_path / "dec"), frames)


def test_decode_to_mp4_and_lower_lod(trained, tmp_path: Path) -> None:
    _, shac, _ = trained
    out = decode(shac, tmp_path / "clip.mp4")
    assert out == tmp_path / "clip.mp4"
    assert load_video(out).shape == (T, H, W, 3)
    coarse, _, model = decode_frames(shac, max_lod=2)
    assert len(model.levels) == 2 and coarse.shape == (T, H, W, 3)
    assert not np.array_equal(coarse, decode_frames(shac)[0])
    with pytest.raises(ConfigError, match="overwrite input"):
        decode(shac, shac)


def test_full_batch_training_and_frame_range(tmp_path: Path) -> None:
    source = write_frames(tmp_path / "clip", make_clip())
    cfg = tiny_config(source, batch_size=0, iterations=3)
    cfg.dataset.frame_start, cfg.dataset.frame_end, cfg.dataset.stride = 1, 7, 2
    report = run(cfg, tmp_path / "out")
    assert report["frame_indices"] == [1, 3, 5] and report["frames"] == 3
    assert report["decode_matches"]


def test_full_batch_refuses_large_clips(tmp_path: Path, monkeypatch) -> None:
    source = write_frames(tmp_path / "clip", make_clip())
    monkeypatch.setattr(video, "MAX_FULL_BATCH_ENTRIES", 1000)
    with pytest.raises(ConfigError, match="trainer.batch_size"):
        run(tiny_config(source, batch_size=0), tmp_path / "out")


def test_sampling_covers_all_frames() -> None:
    sampler = VideoSampler(T, H, W, batch_size=3, seed=0)
    seen = np.concatenate([sampler.sample()[:, 0] for _ in range(-(-T // 3))])
    assert set(seen.tolist()) == set(range(T))


def _bad_sources(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    mixed = write_frames(tmp_path / "mixed", make_clip()[:2])
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(mixed / "f2.png")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 10)
    short = write_frames(tmp_path / "short", make_clip()[:3])
    return {"missing": (tmp_path / "none.mp4", {}), "empty folder": (empty, {}),
            "mixed sizes": (mixed, {}), "unreadable": (garbage, {}),
            "range past end": (short, {"frame_start": 2, "frame_end": 9})}


@pytest.mark.parametrize("case", ["missing", "empty folder", "mixed sizes", "unreadable",
                                  "range past end"])
def test_bad_input_is_a_clear_error(tmp_path: Path, case: str) -> None:
    path, dataset = _bad_sources(tmp_path)[case]
    cfg = build_config(AppConfig, {**TINY, "dataset": {"path": str(path), **dataset}})
    with pytest.raises(DataError, match=path.name):
        run(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("dataset, key", [({"frame_start": -1}, "frame_start"),
                                          ({"frame_start": 4, "frame_end": 4}, "frame_end"),
                                          ({"stride": 0}, "stride"),
                                          ({"downscale": 0}, "downscale")])
def test_bad_dataset_config(dataset: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"dataset.{key}"):
        build_config(AppConfig, {"dataset": dataset})


def test_decode_rejects_other_tasks_and_bad_files(tmp_path: Path, trained) -> None:
    _, shac, _ = trained
    damaged = tmp_path / "damaged.shac"
    damaged.write_bytes(shac.read_bytes()[:-5])
    with pytest.raises(BitstreamError, match="damaged.shac"):
        decode_frames(damaged)
    coarse, _, model = decode_frames(damaged, partial=True)
    assert coarse.shape == (T, H, W, 3) and len(model.levels) < model.num_levels
    model.config["task"] = "image"
    with pytest.raises(BitstreamError, match="not a video"):
        video.field_from_model(model, "x.shac")


def test_entry_points_report_errors_in_one_line(tmp_path: Path, trained, capsys) -> None:
    _, shac, _ = trained
    config = tmp_path / "c.yaml"
    config.write_text("task: video\ntrainer:\n  iterations: 2\n")
    argv = ["encode", "--config", str(config), "--dataset.path", str(tmp_path / "no.mp4"),
            "--output", str(tmp_path / "o")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no.mp4" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["decode", str(shac), "-o", str(tmp_path / "x.png")]) == 2
    assert "x.png" in capsys.readouterr().err


def test_context_model_round_trip(tmp_path: Path) -> None:
    source = write_frames(tmp_path / "clip", make_clip())
    cfg = build_config(AppConfig, {**TINY, "dataset": {"path": str(source)},
                                   "grid": {**TINY["grid"], "entropy_model": "context",
                                            "latent_coder": "context"}})
    report = run(cfg, tmp_path / "out")
    shac = tmp_path / "out" / "clip.shac"
    assert shac.read_bytes()[4] == 5 and report["decode_matches"]
    assert read_shac(shac, max_lod=0).context is not None
    assert "the context model reports" in video.summary(report)
