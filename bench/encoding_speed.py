"""Speed of the grid encoding: reference vs fast paths, side by side, with correctness checks.

Cases (forward + backward w.r.t. the feature table, one "step" each):
  (a) image: 2-D, 24 levels, T = 2^11, F = 1, res 16..512, the 393,216 pixel centres of a
      768x512 (Kodak-size) image at full batch; fast path = precomputed plan (also shown:
      numba without a plan, as for random mini-batches).
  (b) NeRF: 3-D, 16 levels, T = 2^19, F = 2, res 16..512, 2^18 random samples per step.
  (c) video: 3-D, 16 levels, T = 2^17, F = 2, res 16..512, 2^18 random (x, y, t) per step.
  (tiny): 3-D, 4 levels, T = 2^10, F = 2, res 4..64, 2^10 points (dry runs, the
      Triton interpreter).
For each case: steps/s of the reference, of the fast path and of the torch path (the
fallback without numba, and the CUDA path without Triton), their ratios, whether outputs
and gradients match the reference (allclose), and peak memory of one step in a fresh
subprocess. Then end-to-end training-step times (RDTrainer.step) for the image task
(768x512, full batch) and a NeRF-like grid + MLP on 2^18 random points, before
(reference) and after (automatic).

With ``--device cuda`` the fast path is the fused Triton kernel (``--fast`` to change
it): reference, torch path and kernel side by side, the kernel's forward alone, its
achieved bandwidth against the device's (bytes counted in ``bench/encoding_gpu.py``)
and whether each forward is bit-identical to the CPU reference. ``--json PATH`` writes
the rows.

Usage: python bench/encoding_speed.py [--repeats 3] [--threads N] [--no-memory] [--no-e2e]
    [--device cuda] [--cases b,c] [--fast triton] [--json PATH]
Writes a bar plot to bench/results/encoding_speed.png. Timings are the best of
``--repeats`` runs (CPU shared with other work is noisy).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from encoding_gpu import bandwidth_columns, device_peak_tbps, identity_columns, print_gpu_table
from wisp_shacira.fields.base import MLP, CompressedField
from wisp_shacira.fields.image import ImageField, ImageNefConfig
from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.fast import ENV_VAR, EncodingPlan, build_plan, encode
from wisp_shacira.grid.hashing import GridLayout, make_layout
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid
from wisp_shacira.train.config import TrainerConfig
from wisp_shacira.train.rd import RDTrainer

RESULTS = Path(__file__).resolve().parent / "results"
DEVICE = torch.device("cpu")
Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    name: str
    dim: int
    levels: int
    log2_t: int
    feat: int
    points: int | None = None  # None: the pixel grid of a 768x512 image
    fast: str = "numba"
    min_res: int = 16
    max_res: int = 512

    def layout(self) -> GridLayout:
        return make_layout(self.dim, self.min_res, self.max_res, self.levels, self.log2_t)


CASES = {
    "a": Case("(a) image 768x512", 2, 24, 11, 1, fast="plan"),
    "a-numba": Case("(a) same, no plan", 2, 24, 11, 1, fast="numba"),
    "b": Case("(b) NeRF 2^18", 3, 16, 19, 2, points=1 << 18),
    "c": Case("(c) video 2^18", 3, 16, 17, 2, points=1 << 18),
    "tiny": Case("(tiny) 3-D 2^10", 3, 4, 10, 2, points=1 << 10, min_res=4, max_res=64),
}
FAST_OVERRIDE: str | None = None   # --fast: the fast backend of the non-plan cases


def pixel_coords(height: int, width: int) -> torch.Tensor:
    """[H * W, 2] pixel centres (x, y) in (0, 1), as the image task uses them."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def case_inputs(case: Case) -> tuple[GridLayout, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layout, table [rows, F], coords [N, d] and an output gradient [N, L * F]."""
    layout = case.layout()
    gen = torch.Generator().manual_seed(0)
    coords = pixel_coords(512, 768) if case.points is None else torch.rand(case.points, case.dim,
                                                                           generator=gen)
    table = torch.randn(layout.total_rows, case.feat, generator=gen) * 0.1
    grad_out = torch.randn(coords.shape[0], layout.num_levels * case.feat, generator=gen)
    return layout, table.to(DEVICE), coords.to(DEVICE), grad_out.to(DEVICE)


def step(table: torch.Tensor, coords: torch.Tensor, layout: GridLayout, grad_out: torch.Tensor,
         backend: str, plan: EncodingPlan | None) -> Pair:
    """One forward + backward; returns (output, table gradient)."""
    leaf = table.clone().requires_grad_()
    if backend == "reference":
        out = encode_reference(leaf, coords, layout)
    else:
        out = encode(leaf, coords, layout, plan=plan, backend=backend)
    out.backward(grad_out)
    return out.detach(), leaf.grad


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def max_rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


def matches(got: Pair, want: Pair) -> bool:
    return all(torch.allclose(g, w, rtol=1e-4, atol=1e-5 * float(w.abs().max()))
               for g, w in zip(got, want))


def _fast_backend(case: Case) -> Case:
    """The case with its fast backend for this run: ``--fast``, else triton on CUDA."""
    if case.fast == "plan":
        return case
    fast = FAST_OVERRIDE or ("triton" if DEVICE.type == "cuda" else case.fast)
    return dataclasses.replace(case, fast=fast)


def _gpu_columns(row: dict, case: Case, tensors: tuple, outputs: dict, repeats: int,
                 peak: float | None) -> None:
    """Forward-only time of the fast path, bandwidth and bit-identity (CUDA or --fast)."""
    layout, table, coords, _ = tensors
    with torch.no_grad():
        row["fast_fwd_s"] = best_time(lambda: encode(table, coords, layout, backend=case.fast),
                                      repeats)
    bandwidth_columns(row, layout, coords.shape[0], case.feat, peak)
    identity_columns(row, table, coords, layout, outputs)


def bench_case(key: str, repeats: int, peak: float | None = None) -> dict:
    """Times and checks of one case."""
    case = _fast_backend(CASES[key])
    layout, table, coords, grad_out = case_inputs(case)
    row: dict = {"case": case.name, "fast": case.fast}
    plan = None
    if case.fast == "plan":
        start = time.perf_counter()
        plan = build_plan(coords, layout)
        row["setup_s"], row["plan_mb"] = time.perf_counter() - start, plan.nbytes / 2**20
    else:
        start = time.perf_counter()
        step(table, coords[:64], layout, grad_out[:64], case.fast, None)
        row["setup_s"] = time.perf_counter() - start
    want = step(table, coords, layout, grad_out, "reference", None)
    row["ref_s"] = best_time(lambda: step(table, coords, layout, grad_out, "reference", None),
                             repeats)
    got = step(table, coords, layout, grad_out, case.fast, plan)
    row["fast_s"] = best_time(lambda: step(table, coords, layout, grad_out, case.fast, plan),
                              repeats)
    row["match"] = matches(got, want)
    row["err_out"], row["err_grad"] = max_rel_error(got[0], want[0]), max_rel_error(got[1], want[1])
    if case.fast != "plan":
        torch_got = step(table, coords, layout, grad_out, "torch", None)
        row["torch_match"] = matches(torch_got, want)
        row["torch_s"] = best_time(lambda: step(table, coords, layout, grad_out, "torch", None),
                                   max(1, repeats - 1))
        if DEVICE.type == "cuda" or case.fast == "triton":
            _gpu_columns(row, case, (layout, table, coords, grad_out),
                         {case.fast: got[0], "torch": torch_got[0]}, repeats, peak)
    return row


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux's ``VmHWM`` (reset by exec), else ``ru_maxrss``, which a child inherits from
    its parent on Linux and would then overstate.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak(key: str, backend: str) -> None:
    """Subprocess body: print JSON with peak RSS before and after one step (MiB)."""
    case = CASES[key]
    layout, table, coords, grad_out = case_inputs(case)
    before = peak_rss_mb()
    plan = build_plan(coords, layout) if backend == "plan" else None
    step(table, coords, layout, grad_out, backend, plan)
    print(json.dumps({"before_mb": before, "peak_mb": peak_rss_mb()}))


def measure_memory(key: str, backend: str, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", key, backend, "--threads", str(threads)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


class _NerfLikeField(CompressedField):
    """Grid (3-D, 16 levels, T = 2^19, F = 2, D = 1) + MLP 32 -> 64 -> 64 -> 4, as a NeRF's core."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = ShaciraGrid(3, GridConfig(num_levels=16, min_res=16, max_res=512,
                                              log2_table_size=19, feature_dim=2, latent_dim=1))
        self.heads = MLP(self.grid.output_dim, 64, 2, 4)

    def forward(self, coords: torch.Tensor, tau: float | None = None) -> torch.Tensor:
        return self.heads(self.grid.interpolate(coords, tau=tau))


@contextmanager
def forced_backend(name: str | None) -> Iterator[None]:
    """Set ``$WISP_SHACIRA_ENCODING`` (None: automatic) for the duration."""
    old = os.environ.pop(ENV_VAR, None)
    if name is not None:
        os.environ[ENV_VAR] = name
    try:
        yield
    finally:
        os.environ.pop(ENV_VAR, None)
        if old is not None:
            os.environ[ENV_VAR] = old


def _train_step_times(field_: CompressedField, before: Callable[[float | None], torch.Tensor],
                      after: Callable[[float | None], torch.Tensor], repeats: int,
                      rate_sample: int | None = None) -> tuple[float, float]:
    trainer = RDTrainer(field_, TrainerConfig(iterations=100_000, rate_sample=rate_sample))
    field_.train()
    with forced_backend("reference"):
        trainer.step(before)
        ref = best_time(lambda: trainer.step(before), repeats)
    with forced_backend(None):
        trainer.step(after)
        fast = best_time(lambda: trainer.step(after), repeats)
    return ref, fast


def end_to_end(repeats: int) -> list[dict]:
    """RDTrainer.step times: image task (768x512, full batch) and a NeRF-like field."""
    torch.manual_seed(0)
    grid_cfg = GridConfig(num_levels=24, min_res=16, max_res=512, log2_table_size=11,
                          feature_dim=1, latent_dim=1)
    image = ImageField(grid_cfg, ImageNefConfig(hidden_dim=16, num_layers=1), channels=3)
    coords = pixel_coords(512, 768)
    target = torch.rand(coords.shape[0], 3)
    plan = build_plan(coords, image.grid.layout)
    img = _train_step_times(image, lambda tau: torch.mean((image(coords, tau=tau) - target) ** 2),
                            lambda tau: torch.mean((image(None, tau=tau, plan=plan) - target) ** 2),
                            repeats)
    nerf = _NerfLikeField()
    rgba = torch.rand(1 << 18, 4)

    def nerf_mse(tau: float | None) -> torch.Tensor:
        return torch.mean((nerf(torch.rand(1 << 18, 3), tau) - rgba) ** 2)

    nerf_times = [_train_step_times(nerf, nerf_mse, nerf_mse, max(1, repeats - 1), sample)
                  for sample in (None, 1 << 18)]
    return [{"task": "image 768x512 full batch (plan)", "ref_s": img[0], "fast_s": img[1]},
            {"task": "NeRF-like, 2^18 pts, rate on all rows", "ref_s": nerf_times[0][0],
             "fast_s": nerf_times[0][1]},
            {"task": "NeRF-like, 2^18 pts, rate_sample 2^18", "ref_s": nerf_times[1][0],
             "fast_s": nerf_times[1][1]}]


def print_tables(rows: list[dict], e2e: list[dict]) -> None:
    print(f"\nencoding forward+backward, {DEVICE.type}, torch threads = {torch.get_num_threads()}")
    print(f"{'case':20s} {'fast':6s} {'ref s':>7s} {'fast s':>7s} {'ref/s':>7s} {'fast/s':>7s} "
          f"{'ratio':>6s} {'torch s':>8s} {'ratio':>6s} {'match':>5s} {'rel.err out/grad':>17s} "
          f"{'setup s':>7s} {'peak MiB ref/fast/torch':>24s}")
    for r in rows:
        torch_cols = (f"{r['torch_s']:8.3f} {r['ref_s'] / r['torch_s']:6.1f}" if "torch_s" in r
                      else f"{'-':>8s} {'-':>6s}")
        ok = r["match"] and r.get("torch_match", True)
        mem = "/".join(f"{r[k]:.0f}" if k in r else "-"
                       for k in ("mem_ref", "mem_fast", "mem_torch"))
        print(f"{r['case']:20s} {r['fast']:6s} {r['ref_s']:7.3f} {r['fast_s']:7.3f} "
              f"{1 / r['ref_s']:7.2f} {1 / r['fast_s']:7.2f} {r['ref_s'] / r['fast_s']:6.1f} "
              f"{torch_cols} {str(ok):>5s} {r['err_out']:8.1e}/{r['err_grad']:8.1e} "
              f"{r['setup_s']:7.2f} {mem:>24s}")
    plans = [f"{r['case']}: {r['plan_mb']:.0f} MiB" for r in rows if "plan_mb" in r]
    if plans:
        print("plan size: " + ", ".join(plans))
    if e2e:
        print("\nend-to-end training step (RDTrainer.step: field, rate, Adam)")
        print(f"{'task':40s} {'before s':>9s} {'after s':>8s} {'ratio':>6s}")
        for r in e2e:
            ratio = r["ref_s"] / r["fast_s"]
            print(f"{r['task']:40s} {r['ref_s']:9.3f} {r['fast_s']:8.3f} {ratio:6.1f}")


def save_plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    for i, (key, label) in enumerate((("ref_s", "reference"), ("fast_s", "fast path"),
                                      ("torch_s", "torch path"))):
        xs = [j + (i - 1) * width for j, r in enumerate(rows) if key in r]
        ax.bar(xs, [1 / r[key] for r in rows if key in r], width, label=label)
    ax.set_xticks(range(len(rows)), [r["case"] for r in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"forward+backward steps / s ({DEVICE.type})")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,a-numba,b,c")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda: no memory/e2e runs)")
    parser.add_argument("--fast", default=None,
                        help="fast backend of the non-plan cases (default: numba on the CPU, "
                             "triton on CUDA; triton on the CPU needs TRITON_INTERPRET=1)")
    parser.add_argument("--peak-tbps", type=float, default=None,
                        help="device memory bandwidth in TB/s (default: by device name, "
                             "e.g. 4.8 for an H200)")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global DEVICE, FAST_OVERRIDE
    DEVICE, FAST_OVERRIDE = torch.device(args.device), args.fast
    peak = args.peak_tbps
    if DEVICE.type == "cuda":
        args.no_memory = args.no_e2e = True
        name = torch.cuda.get_device_name()
        peak = peak if peak is not None else device_peak_tbps(name)
        print(f"device: {name}, peak memory bandwidth {peak} TB/s")
    if args.child:
        child_peak(*args.child)
        return
    rows = []
    for key in args.cases.split(","):
        row = bench_case(key, args.repeats, peak)
        if not args.no_memory:
            for col, backend in (("mem_ref", "reference"), ("mem_fast", row["fast"]),
                                 ("mem_torch", "torch" if "torch_s" in row else None)):
                if backend is not None:
                    row[col] = measure_memory(key, backend, args.threads)["peak_mb"]
        rows.append(row)
        print(f"done {row['case']}: {row['ref_s'] / row['fast_s']:.1f}x", flush=True)
    e2e = [] if args.no_e2e else end_to_end(args.repeats)
    print_tables(rows, e2e)
    if any("bytes_fwd" in r for r in rows):
        print_gpu_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(DEVICE), "rows": rows,
                                               "e2e": e2e}, indent=2) + "\n")
    if not args.no_plot:
        save_plot(rows, RESULTS / "encoding_speed.png")


if __name__ == "__main__":
    main()
