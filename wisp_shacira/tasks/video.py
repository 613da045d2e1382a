"""Video task: compress a clip into one ``.shac`` file, decode it, report quality.

The clip is a field over ``(x, y, t)`` fitted by a 3-D :class:`ShaciraGrid`. Outputs
for a clip ``NAME``: ``NAME.shac`` (the compressed clip), ``NAME.mp4`` (decoded from
that file, near-lossless H.264 so it shows the reconstruction faithfully; without the
extra ``video`` a folder of PNG frames ``NAME_frames``) and
``metrics.json`` (PSNR and SSIM as means over frames, BPP from the file size, encode
and decode seconds). Frames stay ``uint8`` in memory; training draws random pixel
batches (or, for small clips, the whole clip through a precomputed plan) and
evaluation renders one frame at a time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from wisp_shacira.codec.limits import MAX_FRAMES, MAX_IMAGE_SIDE
from wisp_shacira.codec.model_io import ShacModel, read_shac
from wisp_shacira.config import require
from wisp_shacira.datasets.video import (VideoInfo, VideoSampler, check_video_output,
                                         colors_of, coords_of, frame_coords, load_video,
                                         load_video_with_info, save_video)
from wisp_shacira.datasets.video import decoded_clip_path
from wisp_shacira.errors import BitstreamError, ConfigError, DataError
from wisp_shacira.fields.video import VideoField, VideoNefConfig
from wisp_shacira.grid.fast import build_plan
from wisp_shacira.grid.shacira_grid import GridConfig
from wisp_shacira.metrics import format_metric, video_psnr, video_ssim
from wisp_shacira.resources import demo_data
from wisp_shacira.tasks.protocol import LodTarget, TaskSpec
from wisp_shacira.tasks.report import latent_rate_lines, rate_control_lines
from wisp_shacira.tasks.decoding import EVAL_CHUNK, build_field, eval_bytes, parse_file_config
from wisp_shacira.tasks.common import (Trained, batch_mse, check_not_input, global_batch_table,
                                       prepare_decode_output, prepare_output_dir,
                                       seed_everything, tensorboard_writer, timed, write_json,
                                       write_model)
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.distributed import SINGLE, DataParallel
from wisp_shacira.train.rate_control import (RateSearch, file_size_probe, fit_to_target,
                                             pass_label, rate_target)
from wisp_shacira.train.rd import Distortion, RDTrainer, resolve_device

DEMO_VIDEO = demo_data("demo_video")
MAX_FULL_BATCH_ENTRIES = 1 << 23
"""Limit on ``T * H * W * num_levels`` for ``trainer.batch_size: 0`` (plan of ~1 GiB)."""


@dataclass
class VideoDatasetConfig:
    """Input (YAML section ``dataset``).

    Attributes:
        path: a video file (MP4, MKV, ...) or a folder of frames; None = the bundled
            demo clip ``data/demo_video``.
        frame_start: first source frame (0-based).
        frame_end: end of the frame range, exclusive; None = the last frame.
        stride: keep every ``stride``-th frame of the range.
        downscale: integer area-downscaling factor of every frame.
    """

    path: str | None = None
    frame_start: int = 0
    frame_end: int | None = None
    stride: int = 1
    downscale: int = 1

    def check(self) -> None:
        require(self.frame_start >= 0, f"dataset.frame_start must be >= 0, got {self.frame_start}")
        require(self.frame_end is None or self.frame_end > self.frame_start,
                f"dataset.frame_end ({self.frame_end}) must be greater than "
                f"dataset.frame_start ({self.frame_start})")
        require(self.stride >= 1, f"dataset.stride must be >= 1, got {self.stride}")
        require(self.downscale >= 1, f"dataset.downscale must be >= 1, got {self.downscale}")


@dataclass
class AppConfig:
    """Configuration of ``wisp-shacira encode`` for the video task.

    ``trainer.batch_size`` is the number of random pixels per step (2^18 by default,
    as in the paper); 0 fits the whole clip every step, for small clips only.

    Attributes:
        output: output folder (None = ``runs/video-<time>``).
    """

    task: Literal["video"] = "video"
    output: str | None = None
    grid: GridConfig = field(default_factory=GridConfig)
    nef: VideoNefConfig = field(default_factory=VideoNefConfig)
    dataset: VideoDatasetConfig = field(default_factory=VideoDatasetConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(batch_size=1 << 18))

    def check(self) -> None:
        require(self.grid.compressed,
                "the video task writes .shac files: grid.compressed must be true")


def _to_uint8(colors: torch.Tensor) -> torch.Tensor:
    """``[N, 3]`` unclamped colours -> ``[N, 3]`` uint8 (clamp to [0, 1], round to 1/255)."""
    return torch.round(colors.clamp(0, 1) * 255).to(torch.uint8)


@torch.no_grad()
def render_frames(field_: VideoField, num_frames: int, height: int, width: int,
                  lod: int | None = None, chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Evaluate the field on every pixel of every frame at LOD ``lod`` (levels used;
    None = all), one frame at a time, in chunks.

    Encoder and decoder both call this function, so the frames measured before export
    are the frames a decoder rebuilds from the file.

    Returns:
        frames: [T, H, W, 3] uint8.
    """
    device = next(field_.parameters()).device
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in tqdm(range(num_frames), desc="frames", unit="frame", leave=False,
                  disable=num_frames * height * width < 1 << 22):
        coords = torch.from_numpy(frame_coords(t, num_frames, height, width)).to(device)
        rgb = torch.cat([_to_uint8(field_(coords[i:i + chunk], lod))
                         for i in range(0, len(coords), chunk)])
        out[t] = rgb.reshape(height, width, 3).cpu().numpy()
    return out


def _full_batch_loss(field_: VideoField, frames: np.ndarray, device: torch.device,
                     parallel: DataParallel = SINGLE) -> Distortion:
    """``distortion(tau)``: MSE of the whole clip through a precomputed plan (small clips
    only; in a data-parallel run this rank's slice of the pixels, weighted)."""
    num_frames, height, width, _ = frames.shape
    entries = num_frames * height * width * field_.grid.num_levels
    if entries > MAX_FULL_BATCH_ENTRIES:
        raise ConfigError(f"trainer.batch_size 0 fits the whole clip each step, but "
                          f"{num_frames}x{height}x{width} pixels x {field_.grid.num_levels} "
                          f"levels is too large; set trainer.batch_size (e.g. 262144)")
    t, y, x = np.meshgrid(np.arange(num_frames), np.arange(height), np.arange(width),
                          indexing="ij")
    indices = np.stack([t.ravel(), y.ravel(), x.ravel()], axis=1)
    start, stop = parallel.bounds(len(indices))
    weight = parallel.weight(stop - start, len(indices))
    indices = indices[start:stop]
    coords = torch.from_numpy(coords_of(indices, num_frames, height, width)).to(device)
    target = torch.from_numpy(colors_of(frames, indices)).to(device)
    plan = build_plan(coords, field_.grid.layout)
    return lambda tau: batch_mse(field_(None, tau=tau, plan=plan), target, weight)


def _random_batch_loss(field_: VideoField, frames: np.ndarray, batch_size: int, seed: int,
                       device: torch.device, parallel: DataParallel = SINGLE) -> Distortion:
    """``distortion(tau)``: MSE of a random pixel batch per call (every frame visited each
    epoch; in a data-parallel run this rank's equal slice of the batch).

    Raises:
        ConfigError: ``batch_size`` not divisible by the number of processes.
    """
    parallel.check_divisible("trainer.batch_size", batch_size)
    num_frames, height, width, _ = frames.shape
    sampler = VideoSampler(num_frames, height, width, batch_size, seed)

    def distortion(tau: float | None) -> torch.Tensor:
        start, stop = parallel.bounds(batch_size)
        indices = sampler.sample()[start:stop]
        coords = torch.from_numpy(sampler.coords_of(indices)).to(device)
        target = torch.from_numpy(colors_of(frames, indices)).to(device)
        table = global_batch_table(field_, tau, batch_size, len(indices))
        return batch_mse(field_(coords, tau=tau, table=table), target)

    return distortion


def _train(frames: np.ndarray, name: str, cfg: AppConfig, device: torch.device,
           writer: Any, config: dict, scale: float = 1.0,
           parallel: DataParallel = SINGLE) -> Trained:
    """Fit a field to ``frames: [T, H, W, 3] uint8`` with the lambda schedule times
    ``scale``; returns it hardened and rounded. ``writer``: a TensorBoard
    ``SummaryWriter`` or None; ``config``: the file's CONFIG (for the size shown)."""
    seed_everything(cfg.trainer.seed)
    field_ = VideoField(cfg.grid, cfg.nef).to(device)
    if cfg.trainer.batch_size == 0:
        distortion = _full_batch_loss(field_, frames, device, parallel)
    else:
        distortion = _random_batch_loss(field_, frames, cfg.trainer.batch_size,
                                        cfg.trainer.seed, device, parallel)
    trainer = RDTrainer(field_, cfg.trainer, file_size_probe(field_, config), scale, parallel)
    trainer.fit(distortion, desc=pass_label(f"video {name}", scale), writer=writer, tag=name)
    return Trained(field_, trainer.parallel_report())


def _fit(frames: np.ndarray, name: str, cfg: AppConfig, device: torch.device, writer: Any,
         config: dict, parallel: DataParallel) -> tuple[Trained, RateSearch | None]:
    """The trained field, and the rate-control search when a target size is set."""
    target = rate_target(lambda: VideoField(cfg.grid, cfg.nef), cfg.trainer, config,
                         frames[..., 0].size, f"video {name}")
    return fit_to_target(lambda scale: _train(frames, name, cfg, device, writer, config, scale,
                                              parallel),
                         lambda trained: trained.field, config, target, f"video {name}")


def file_config(cfg: AppConfig, name: str, info: VideoInfo, num_frames: int) -> dict:
    """What the ``.shac`` CONFIG section records for a clip."""
    return {"task": "video", "grid": dataclasses.asdict(cfg.grid),
            "nef": dataclasses.asdict(cfg.nef),
            "video": {"name": name, "num_frames": num_frames, "height": info.height,
                      "width": info.width, "fps": info.fps / cfg.dataset.stride}}


@dataclass
class VideoMeta:
    """The ``video`` section of a video file's CONFIG."""

    name: str
    num_frames: int
    height: int
    width: int
    fps: float

    def check(self) -> None:
        require(1 <= self.num_frames <= MAX_FRAMES,
                f"video.num_frames must be 1..{MAX_FRAMES}, got {self.num_frames}")
        require(1 <= self.height <= MAX_IMAGE_SIDE and 1 <= self.width <= MAX_IMAGE_SIDE,
                f"video frame size {self.width}x{self.height} outside 1..{MAX_IMAGE_SIDE}")
        require(0 < self.fps <= 1000, f"video.fps must be in (0, 1000], got {self.fps}")


@dataclass
class VideoFileConfig:
    """The CONFIG section of a video ``.shac`` file (see :func:`file_config`)."""

    task: Literal["video"]
    grid: GridConfig
    nef: VideoNefConfig
    video: VideoMeta


def frames_bytes(field_: VideoField, meta: VideoMeta) -> float:
    """Memory of :func:`render_frames` and of writing its frames (an upper estimate)."""
    frame = meta.height * meta.width
    return meta.num_frames * frame * 3 * 2 + frame * 64 + eval_bytes(field_, EVAL_CHUNK)


def field_from_model(model: ShacModel, name: str) -> tuple[VideoField, VideoMeta]:
    """Rebuild a video field (on the CPU) and its clip metadata from a decoded model, after
    checking the file's configuration, weights and the memory of a full decode."""
    cfg = parse_file_config(VideoFileConfig, model, name)
    meta = cfg.video
    field_ = build_field(lambda: VideoField(cfg.grid, cfg.nef), model, name,
                         lambda probe: frames_bytes(probe, meta),
                         f"{meta.num_frames} frames of {meta.width}x{meta.height}")
    return field_, meta


def decode_frames(path: Path, max_lod: int | None = None, partial: bool = False
                  ) -> tuple[np.ndarray, VideoMeta, ShacModel]:
    """Decode a video ``.shac`` file from the file alone.

    Args:
        max_lod: use the first ``max_lod`` levels only (None = all).
        partial: accept a truncated stream and use the levels it holds.
    Returns:
        (frames [T, H, W, 3] uint8, clip metadata, the decoded model).
    """
    model = read_shac(path, max_lod=max_lod, partial=partial)
    if len(model.levels) == 0:
        raise BitstreamError(f"{path}: no complete latent level to decode "
                             f"({model.problem or 'none requested'})")
    field_, meta = field_from_model(model, str(path))
    frames = render_frames(field_, meta.num_frames, meta.height, meta.width, len(model.levels))
    return frames, meta, model


def decode(path: Path, out: Path, max_lod: int | None = None, *, force: bool = False) -> Path:
    """``wisp-shacira decode`` for videos: ``out`` ending in .mp4/.mkv/.mov/.avi gets a
    video, any other path a folder of ``frame_00000.png``, ...; ``force`` replaces a
    read-only output. The output path is checked before decoding."""
    out = prepare_decode_output(TASK, Path(path), Path(out), force)
    frames, meta, _ = decode_frames(Path(path), max_lod)
    return save_video(frames, out, fps=meta.fps, force=force)


def _clip_name(source: Path) -> str:
    return source.resolve().name if source.is_dir() else source.stem


def run(cfg: AppConfig, out_dir: Path, parallel: DataParallel = SINGLE) -> dict:
    """Train, export, decode and measure one clip; writes files and ``metrics.json``
    (under ``torchrun``: every process trains, only the main one writes; the others
    return ``{"task", "rank"}``)."""
    if parallel.is_main:
        prepare_output_dir(out_dir)
    data = cfg.dataset
    source = Path(data.path) if data.path is not None else DEMO_VIDEO
    frames, info = load_video_with_info(source, data.frame_start, data.frame_end, data.stride,
                                        data.downscale)
    name = _clip_name(source)
    shac_path, video_path = out_dir / f"{name}.shac", decoded_clip_path(out_dir, name)
    for output in (shac_path, video_path):
        check_not_input(output, [source])
    num_frames, height, width, _ = frames.shape
    device = resolve_device(cfg.trainer.device)
    writer = tensorboard_writer(cfg.trainer.tensorboard and parallel.is_main,
                                out_dir / "tensorboard")
    with timed() as encode_time:
        config = file_config(cfg, name, info, num_frames)
        trained, rate_search = _fit(frames, name, cfg, device, writer, config, parallel)
        if not parallel.is_main:
            return {"task": "video", "rank": parallel.rank}
        field_ = trained.field
        nbytes, rate = write_model(field_, config, shac_path)
    reference = render_frames(field_.cpu(), num_frames, height, width)
    with timed() as decode_time:
        decoded, meta, _ = decode_frames(shac_path)
    save_video(decoded, video_path, fps=meta.fps)
    report = {"task": "video", "name": name, "source": str(source),
              "frame_indices": list(info.frame_indices), "frames": num_frames,
              "height": height, "width": width, "fps": meta.fps,
              "psnr": video_psnr(frames, decoded, 255.0),
              "ssim": video_ssim(frames, decoded, 255.0),
              "bpp": nbytes * 8 / (num_frames * height * width), "bytes": nbytes,
              "psnr_before_export": video_psnr(frames, reference, 255.0),
              "decode_matches": bool(np.array_equal(reference, decoded)),
              "encode_seconds": encode_time[0],
              "encode_seconds_per_frame": encode_time[0] / num_frames,
              "decode_seconds": decode_time[0], "rate": rate,
              "rate_control": None if rate_search is None else rate_search.report(),
              "config": dataclasses.asdict(cfg)}
    if trained.parallel is not None:
        report["distributed"] = trained.parallel
    write_json(out_dir / "metrics.json", report)
    return report


def summary(report: dict) -> str:
    """Readable summary of a :func:`run` report, for ``wisp-shacira encode``."""
    rows = [("video", f"{report['name']}: {report['frames']} frames of "
                      f"{report['width']}x{report['height']}"),
            ("PSNR (mean of frames)", f"{report['psnr']:.2f} dB"),
            ("SSIM (mean of frames)", format_metric(report["ssim"])),
            ("BPP", f"{report['bpp']:.4f} ({report['bytes']} bytes)"),
            ("encode", f"{report['encode_seconds']:.1f} s "
                       f"({report['encode_seconds_per_frame']:.2f} s/frame)"),
            ("decode", f"{report['decode_seconds']:.2f} s"),
            ("decode == exported", str(report["decode_matches"]))]
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
    return (table + latent_rate_lines([report.get("rate")], [report["name"]])
            + rate_control_lines([report["rate_control"]], [report["name"]]))


class VideoSource:
    """Renders a video model at any LOD and frame (a
    :class:`~wisp_shacira.tasks.protocol.PlanarSource`)."""

    view = "planar"

    def __init__(self, model: ShacModel, name: str) -> None:
        self.field, meta = field_from_model(model, name)
        self.height, self.width, self.channels = meta.height, meta.width, 3
        self.num_frames, self.fps, self.num_levels = meta.num_frames, meta.fps, model.num_levels

    @torch.no_grad()
    def colours(self, coords: torch.Tensor, lod: int, frame: int = 0) -> torch.Tensor:
        t = torch.full_like(coords[:, :1], (frame + 0.5) / self.num_frames)
        return self.field(torch.cat([coords, t], 1), lod).clamp(0, 1)

    def frames(self, lod: int) -> np.ndarray:
        """Every frame at LOD ``lod``, as ``decode_frames`` gives them: [T, H, W, 3] uint8."""
        return render_frames(self.field, self.num_frames, self.height, self.width, lod)

    def write(self, lod: int, out: Path, force: bool = False) -> Path:
        return save_video(self.frames(lod), out, fps=self.fps, force=force)


def lod_target(model: ShacModel, name: str, reference: Path | None, poses: Path | None,
               max_views: int | None) -> LodTarget:
    """What ``wisp-shacira lod`` renders (every frame at each LOD) and compares it with
    (``reference``, the original video, or the highest LOD held)."""
    if poses is not None:
        raise ConfigError(f"--poses is for scenes; {name} holds a video")
    source = VideoSource(model, name)
    frames = source.num_frames
    ref, label = None, "full LOD (no reference given)"
    if reference is not None:
        ref = _video_reference(reference, frames, source.height, source.width)
        label = f"original video {reference} (first {frames} frames)"
    return LodTarget(lambda prefix, lod: VideoSource(prefix, name).frames(lod), ref, label,
                     preview=frames // 2)


def decode_output(source: Path, out: Path) -> Path:
    """A video decodes to a video file (.mp4, ...) or a folder of frames."""
    return check_video_output(out)


def _video_reference(path: Path, num_frames: int, height: int, width: int) -> np.ndarray:
    """The first ``num_frames`` frames of ``path``, area-downscaled to the model's size."""
    first = load_video(path, 0, 1)
    factor = first.shape[2] // width
    if factor < 1 or first.shape[2] // factor != width or first.shape[1] // factor != height:
        raise DataError(f"{path}: frames of {first.shape[2]}x{first.shape[1]} are not an "
                        f"integer multiple of the model's {width}x{height}")
    return load_video(path, 0, num_frames, 1, factor)


TASK = TaskSpec(name="video", description="a video", config_type=AppConfig, run=run,
                summary=summary, decode_output=decode_output, decode=decode,
                open_source=VideoSource, lod_target=lod_target, data_parallel=True)
