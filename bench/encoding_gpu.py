"""GPU columns of ``bench/encoding_speed.py``: bytes moved, bandwidth, bit-identity.

Bytes a fused kernel must move (float32, ``N`` points, ``L`` levels used, ``F``
features, ``2^d`` corners, ``R`` table rows), counted at 4 bytes per value read or
written (the useful bytes; a random 4-byte gather really moves a 32-byte sector, so
the fraction of peak shown is a lower bound of how busy the memory system is):

- forward: coordinates ``N d``, corner gathers ``N L 2^d F``, output ``N L F``;
- backward: coordinates ``N d``, output gradient ``N L F``, atomic adds
  ``N L 2^d F`` (each counted once, as one 4-byte write), zeroing the table gradient
  ``R F``.

Most gathers of coarse levels hit the L2 cache (60 MB on an H200; the T = 2^19,
16-level grid is 42 MB at F = 2), so the achieved figure can exceed what DRAM alone
would allow for random access, but not the device's peak.
"""
from __future__ import annotations

import torch

from wisp_shacira.grid.encoding import encode_reference
from wisp_shacira.grid.hashing import GridLayout

PEAK_TBPS = {"H200": 4.8, "H100": 3.35, "A100": 2.0, "L40S": 0.864, "A10": 0.6, "4090": 1.0}
"""Device memory bandwidth in TB/s by a name fragment (datasheet figures)."""


def device_peak_tbps(name: str) -> float | None:
    """Datasheet bandwidth of the device called ``name`` (None when unknown)."""
    for key, value in PEAK_TBPS.items():
        if key in name:
            return value
    return None


def kernel_bytes(layout: GridLayout, num_points: int, feat: int) -> tuple[int, int]:
    """(forward, backward) bytes of the fused kernels (see the module docstring)."""
    levels, corners, dim = layout.num_levels, 2**layout.dim, layout.dim
    coords = 4 * num_points * dim
    gathers = 4 * num_points * levels * corners * feat
    outputs = 4 * num_points * levels * feat
    forward = coords + gathers + outputs
    backward = coords + outputs + gathers + 4 * layout.total_rows * feat
    return forward, backward


def bandwidth_columns(row: dict, layout: GridLayout, num_points: int, feat: int,
                      peak_tbps: float | None) -> None:
    """Add ``bytes_fwd``, ``bytes_bwd``, ``gbps`` (fwd+bwd of the fast path),
    ``gbps_fwd`` and ``peak_fraction`` to ``row``."""
    forward, backward = kernel_bytes(layout, num_points, feat)
    row["bytes_fwd"], row["bytes_bwd"] = forward, backward
    row["gbps"] = (forward + backward) / row["fast_s"] / 1e9
    if "fast_fwd_s" in row:
        row["gbps_fwd"] = forward / row["fast_fwd_s"] / 1e9
    if peak_tbps is not None:
        row["peak_tbps"] = peak_tbps
        row["peak_fraction"] = row["gbps"] / (peak_tbps * 1e3)


def identity_columns(row: dict, table: torch.Tensor, coords: torch.Tensor, layout: GridLayout,
                     outputs: dict[str, torch.Tensor]) -> None:
    """``equal_ref_<name>`` / ``equal_cpu_<name>``: whether each backend's forward equals
    the reference on the same device / the CPU reference, bit for bit."""
    reference = encode_reference(table, coords, layout)
    cpu = encode_reference(table.cpu(), coords.cpu(), layout)
    row["equal_ref_reference_cpu"] = bool(torch.equal(reference.cpu(), cpu))
    for name, out in outputs.items():
        row[f"equal_ref_{name}"] = bool(torch.equal(out, reference))
        row[f"equal_cpu_{name}"] = bool(torch.equal(out.cpu(), cpu))
        row[f"mismatch_cpu_{name}"] = int((out.cpu() != cpu).sum())


def print_gpu_table(rows: list[dict]) -> None:
    """Reference, torch path and fused kernel side by side, with bandwidth."""
    print("\nGPU: forward+backward ms (ratio to the reference), fused-kernel bandwidth "
          "(useful bytes, module docstring of bench/encoding_gpu.py)")
    print(f"{'case':20s} {'fast':7s} {'ref ms':>8s} {'torch ms':>9s} {'fast ms':>8s} "
          f"{'x ref':>6s} {'x torch':>7s} {'fwd ms':>7s} {'MB':>7s} {'GB/s':>7s} "
          f"{'% peak':>6s} {'bit-equal (ref/cpu)':>20s}")
    for r in rows:
        torch_ms = f"{1e3 * r['torch_s']:9.2f}" if "torch_s" in r else f"{'-':>9s}"
        vs_torch = f"{r['torch_s'] / r['fast_s']:7.1f}" if "torch_s" in r else f"{'-':>7s}"
        fwd = f"{1e3 * r['fast_fwd_s']:7.2f}" if "fast_fwd_s" in r else f"{'-':>7s}"
        peak = f"{100 * r['peak_fraction']:6.1f}" if "peak_fraction" in r else f"{'-':>6s}"
        fast = r["fast"]
        equal = (f"{r.get(f'equal_ref_{fast}', '-')}/{r.get(f'equal_cpu_{fast}', '-')}"
                 if f"equal_ref_{fast}" in r else "-")
        megabytes = (r["bytes_fwd"] + r["bytes_bwd"]) / 1e6 if "bytes_fwd" in r else 0.0
        gbps = f"{r['gbps']:7.0f}" if "gbps" in r else f"{'-':>7s}"
        print(f"{r['case']:20s} {fast:7s} {1e3 * r['ref_s']:8.2f} {torch_ms} "
              f"{1e3 * r['fast_s']:8.2f} {r['ref_s'] / r['fast_s']:6.1f} {vs_torch} {fwd} "
              f"{megabytes:7.0f} {gbps} {peak} {equal:>20s}")
    for r in rows:
        if "equal_cpu_torch" in r:
            print(f"{r['case']}: torch path forward bit-equal to the CPU reference: "
                  f"{r['equal_cpu_torch']} ({r['mismatch_cpu_torch']} values differ); "
                  f"CUDA reference equal to the CPU one: {r['equal_ref_reference_cpu']}")
