"""Data-parallel training of one field with ``torch.distributed`` (launched by ``torchrun``).

Every process holds the whole field and draws the *same global batch* with the same
generators a single process uses (same seeds, same calls, same shapes), then keeps its
own slice (``torch.tensor_split`` bounds, :meth:`DataParallel.bounds`). Since every
process consumes every random number, the soft-rounding noise, the rate-term noise and
the parameters stay identical on all of them; only the distortion's gradient differs.

A step (:meth:`GradientReducer.reduce`, called by :class:`~wisp_shacira.train.rd.RDTrainer`):
back-propagate the rank's distortion (scaled by its share, so that the mean over ranks
is the gradient of the global batch's mean), average those gradients over the ranks,
then back-propagate the rate locally (identical everywhere: no communication).

What is averaged each step, as float32 sums (``all_reduce``) divided by the world size:

* one flat buffer: the gradients of every parameter except the latent table (latent
  decoder, prior, heads), the step's MSE, one has-gradient flag per parameter and, when
  the table is reduced apart, each rank's count of touched table rows;
* the latent table's gradient: inside the flat buffer when it is small
  (:data:`DENSE_BELOW_BYTES`); otherwise, per step, whichever is fewer bytes: the dense
  table, or only the rows some rank touched (a row whose distortion gradient is zero on
  every rank averages to zero): ``all_gather`` of the touched rows (padded row indices,
  or one bit per table row when that is fewer bytes), their union, and an
  ``all_reduce`` of those rows' values. Every rank sees the same counts, so all take
  the same choice.

Only the main process (rank 0) writes outputs; :meth:`GradientReducer.check_in_sync`
compares a checksum of every parameter across ranks at the end of training.
"""
from __future__ import annotations

import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

from wisp_shacira.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)

DENSE_BELOW_BYTES = 1 << 20
"""A latent table smaller than this is averaged inside the flat buffer every step (one
collective a step; the touched-row exchange would cost two more round trips)."""
DEFAULT_TIMEOUT = timedelta(hours=3)
"""How long a collective may wait: the other ranks wait at the next one while rank 0
exports, decodes and measures (a gigapixel decode takes minutes)."""
_COUNT_SPLIT = 1 << 20
"""Row counts travel in the float32 buffer as ``(count >> 20, count & (2^20 - 1))``: exact."""


@dataclass(frozen=True)
class DataParallel:
    """Where this process stands in a data-parallel run (``world == 1``: a single process,
    every method a no-op).

    Attributes:
        rank: this process, ``0 .. world - 1``; rank 0 is the main process (it writes).
        world: number of processes.
        backend: ``gloo`` or ``nccl`` (None for a single process).
        device: the device collectives run on (CPU for gloo, ``cuda:LOCAL_RANK`` for nccl).
    """

    rank: int = 0
    world: int = 1
    backend: str | None = None
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def bounds(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this rank's slice of ``n`` items (``torch.tensor_split``'s
        split: the first ``n % world`` slices hold one item more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def split(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's slice of ``items: [n, ...]`` along dim 0 (all of it for one process)."""
        start, stop = self.bounds(items.shape[0])
        return items[start:stop]

    def weight(self, n_local: int, n_global: int) -> float:
        """Factor of a rank's mean distortion over ``n_local`` of ``n_global`` samples so that
        the mean over ranks is the global mean: ``world * n_local / n_global`` (1 when equal)."""
        return 1.0 if n_local * self.world == n_global else self.world * n_local / n_global

    def check_divisible(self, key: str, value: int) -> None:
        """Refuse a random batch that the processes cannot share equally.

        Raises:
            ConfigError: ``value`` (config key ``key``) not divisible by the world size.
        """
        if value % self.world:
            raise ConfigError(f"{key} = {value} is not divisible by the {self.world} processes "
                              f"of this torchrun: use a multiple of {self.world}")

    def barrier(self) -> None:
        """Wait for every rank (nothing for one process)."""
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a picklable object) on every rank."""
        if not self.distributed:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


SINGLE = DataParallel()
"""The single-process instance."""


def world_from_env(env: Mapping[str, str] | None = None) -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when unset).

    Raises:
        ConfigError: a WORLD_SIZE that is not a positive integer.
    """
    env = os.environ if env is None else env
    text = env.get("WORLD_SIZE", "1")
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"WORLD_SIZE={text!r} is not a positive integer")
    return int(text)


@contextmanager
def process_group(device: torch.device,
                  timeout: timedelta = DEFAULT_TIMEOUT) -> Iterator[DataParallel]:
    """Join the process group ``torchrun`` describes in the environment (RANK, LOCAL_RANK,
    WORLD_SIZE, MASTER_ADDR/PORT) for the training device ``device`` (gloo on the CPU,
    nccl on ``cuda:LOCAL_RANK``); at the end wait for every rank, then leave it."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    comm = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        comm = torch.device("cuda", local_rank)
    dist.init_process_group(backend, init_method="env://", timeout=timeout)
    parallel = DataParallel(dist.get_rank(), dist.get_world_size(), backend, comm)
    log.debug("rank %d of %d (%s)", parallel.rank, parallel.world, backend)
    ok = False
    try:
        yield parallel
        ok = True
    finally:
        if ok:
            parallel.barrier()
        dist.destroy_process_group()


@dataclass
class ReductionStats:
    """Bytes and time the gradient averaging cost, summed over steps."""

    steps: int = 0
    bytes: int = 0
    sparse_steps: int = 0
    mask_steps: int = 0
    touched_rows: int = 0
    seconds: float = 0.0


class GradientReducer:
    """Averages the distortion gradients of a field's parameters over the ranks (see the
    module docstring).

    Args:
        params: every trained parameter (the optimiser's).
        table: the latent table ``[rows, D]`` among them (None: none apart).
        parallel: the process group.
        dense_below: table bytes under which the table joins the flat buffer.
    """

    def __init__(self, params: Sequence[nn.Parameter], table: nn.Parameter | None,
                 parallel: DataParallel, dense_below: int = DENSE_BELOW_BYTES) -> None:
        self.parallel = parallel
        big = table is not None and table.numel() * 4 >= dense_below
        self.table = table if big else None
        self.table_bytes = 0 if table is None else table.numel() * 4
        self.small = [p for p in params if p is not self.table]
        self.stats = ReductionStats()

    def _pack(self, loss: torch.Tensor, counts: int) -> torch.Tensor:
        """``[1 + P + 2W + sum numel]``: loss, has-grad flags, this rank's row count in its
        two slots, gradients (zeros where None)."""
        world, rank = self.parallel.world, self.parallel.rank
        head = torch.zeros(1 + len(self.small) + 2 * world)
        head[0] = float(loss)
        head[1:1 + len(self.small)] = torch.tensor([p.grad is not None for p in self.small],
                                                   dtype=torch.float32)
        slot = 1 + len(self.small) + 2 * rank
        head[slot], head[slot + 1] = counts // _COUNT_SPLIT, counts % _COUNT_SPLIT
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                 for p in self.small]
        return torch.cat([head.to(self.parallel.device), *[g.to(self.parallel.device)
                                                           for g in grads]])

    def _unpack(self, flat: torch.Tensor) -> tuple[float, list[int]]:
        """Set the averaged gradients; returns (mean loss, every rank's row count)."""
        world, count = self.parallel.world, len(self.small)
        head = flat[:1 + count + 2 * world].cpu()
        offset = 1 + count + 2 * world
        for i, p in enumerate(self.small):
            part = flat[offset:offset + p.numel()]
            offset += p.numel()
            if head[1 + i] > 0:
                p.grad = (part / world).view_as(p).to(device=p.device, dtype=p.dtype)
        slots = head[1 + count:].tolist()
        counts = [int(slots[2 * r]) * _COUNT_SPLIT + int(slots[2 * r + 1]) for r in range(world)]
        return float(head[0]) / world, counts

    def _all_reduce(self, tensor: torch.Tensor) -> None:
        dist.all_reduce(tensor)
        self.stats.bytes += tensor.numel() * tensor.element_size()

    def reduce(self, loss: torch.Tensor) -> float:
        """Average the gradients now held (of this rank's distortion ``loss``) over the
        ranks, in place; returns the mean over ranks of ``loss`` (the global MSE)."""
        start = time.perf_counter()
        rows = self._touched_rows()
        flat = self._pack(loss.detach(), 0 if rows is None else len(rows))
        self._all_reduce(flat)
        mean, counts = self._unpack(flat)
        if self.table is not None and rows is not None:
            self._reduce_table(rows, counts)
        self.stats.steps += 1
        self.stats.seconds += time.perf_counter() - start
        return mean

    def _touched_rows(self) -> torch.Tensor | None:
        """Rows of the table with a nonzero gradient on this rank (None: no table apart)."""
        if self.table is None:
            return None
        if self.table.grad is None:
            return torch.zeros(0, dtype=torch.int64, device=self.table.device)
        return self.table.grad.ne(0).flatten(1).any(1).nonzero().squeeze(1)

    def _reduce_table(self, rows: torch.Tensor, counts: list[int]) -> None:
        """The table's gradient: nothing when no rank touched it, else the cheapest of
        dense, touched rows exchanged as indices, and touched rows exchanged as bitmasks."""
        table = self.table
        assert table is not None
        if max(counts) == 0:
            return
        if table.grad is None:
            table.grad = torch.zeros_like(table)
        world, num_rows = self.parallel.world, table.shape[0]
        index_dtype = torch.int32 if num_rows < 2**31 else torch.int64
        values = min(num_rows, sum(counts)) * table[0].numel() * 4
        by_index = world * max(counts) * (4 if index_dtype == torch.int32 else 8) + values
        by_mask = world * math.ceil(num_rows / 8) + values
        if min(by_index, by_mask) >= self.table_bytes:
            grad = table.grad.float().to(self.parallel.device)
            self._all_reduce(grad)
            table.grad = (grad / world).to(device=table.device, dtype=table.dtype)
            return
        if by_mask < by_index:
            union = self._union_of_masks(rows, num_rows)
            self.stats.mask_steps += 1
        else:
            union = self._union_of_indices(rows, counts, index_dtype)
        summed = table.grad[union].float().to(self.parallel.device)
        self._all_reduce(summed)
        table.grad[union] = (summed / world).to(device=table.device, dtype=table.dtype)
        self.stats.sparse_steps += 1
        self.stats.touched_rows += len(union)

    def _union_of_indices(self, rows: torch.Tensor, counts: list[int],
                          dtype: torch.dtype) -> torch.Tensor:
        """Sorted union of every rank's touched rows (``all_gather`` of the row indices,
        padded to the largest count)."""
        longest, device = max(counts), self.parallel.device
        padded = torch.zeros(longest, dtype=dtype, device=device)
        padded[:len(rows)] = rows.to(device=device, dtype=dtype)
        gathered = [torch.empty_like(padded) for _ in range(self.parallel.world)]
        dist.all_gather(gathered, padded)
        self.stats.bytes += self.parallel.world * padded.numel() * padded.element_size()
        parts = [g[:c] for g, c in zip(gathered, counts)]
        return torch.unique(torch.cat(parts).long()).to(rows.device)

    def _union_of_masks(self, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
        """Sorted union of every rank's touched rows (``all_gather`` of one bit per row)."""
        mask = torch.zeros(math.ceil(num_rows / 8) * 8, dtype=torch.bool, device=rows.device)
        mask[rows] = True
        packed = _pack_bits(mask).to(self.parallel.device)
        gathered = [torch.empty_like(packed) for _ in range(self.parallel.world)]
        dist.all_gather(gathered, packed)
        self.stats.bytes += self.parallel.world * packed.numel()
        union = torch.zeros_like(packed)
        for part in gathered:
            union |= part
        return _unpack_bits(union.to(rows.device))[:num_rows].nonzero().squeeze(1)

    def check_in_sync(self, module: nn.Module) -> None:
        """Compare a checksum of every parameter and buffer across ranks.

        Raises:
            TrainingError: the ranks hold different values (names the first ones).
        """
        state = module.state_dict()
        sums = torch.stack([_checksum(t) for t in state.values()]).to(self.parallel.device)
        gathered = [torch.empty_like(sums) for _ in range(self.parallel.world)]
        dist.all_gather(gathered, sums)
        differ = torch.stack(gathered).ne(sums).any(0).cpu()
        if bool(differ.any()):
            names = [name for name, bad in zip(state, differ.tolist()) if bad]
            raise TrainingError(f"after training the {self.parallel.world} processes hold "
                                f"different values of {', '.join(names[:3])}"
                                f"{' ...' if len(names) > 3 else ''}; the run is not "
                                f"data-parallel (a rank drew different random numbers)")

    def report(self) -> dict:
        """What was averaged: ``world_size``, ``backend``, bytes per step (payloads: an
        ``all_reduce`` counts its buffer, an ``all_gather`` what each rank receives), the
        dense alternative, the flat buffer, the table (and whether it rides in the flat
        buffer), sparse steps, mean touched rows, seconds per step in the reduction."""
        steps = max(self.stats.steps, 1)
        apart = 0 if self.table is None else self.table_bytes
        small = sum(p.numel() for p in self.small) + 1 + len(self.small) + 2 * self.parallel.world
        return {"world_size": self.parallel.world, "backend": self.parallel.backend,
                "steps": self.stats.steps,
                "reduced_bytes_per_step": self.stats.bytes / steps,
                "dense_bytes_per_step": 4 * small + apart,
                "flat_buffer_bytes": 4 * small, "table_bytes": self.table_bytes,
                "table_in_flat_buffer": self.table is None and self.table_bytes > 0,
                "sparse_steps": self.stats.sparse_steps, "mask_steps": self.stats.mask_steps,
                "touched_rows_per_sparse_step": (self.stats.touched_rows
                                                 / max(self.stats.sparse_steps, 1)),
                "reduce_seconds_per_step": self.stats.seconds / steps}


def _checksum(tensor: torch.Tensor) -> torch.Tensor:
    """An int64 checksum of a tensor's bits (position-weighted sum, wrapping)."""
    flat = tensor.detach().reshape(-1).contiguous()
    ints = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}[flat.element_size()]
    total = torch.zeros((), dtype=torch.int64, device=flat.device)
    chunk = 1 << 22
    for start in range(0, flat.numel(), chunk):
        bits = flat[start:start + chunk].view(ints).to(torch.int64)
        weights = torch.arange(start, start + bits.numel(), device=flat.device) * 2 + 1
        total = total + (bits * weights).sum()
    return total


_BITS = torch.arange(8, dtype=torch.uint8)


def _pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """``[8 k]`` bool -> ``[k]`` uint8, bit ``j`` of byte ``i`` = ``mask[8 i + j]``."""
    bits = mask.view(-1, 8).to(torch.uint8) << _BITS.to(mask.device)
    return bits.sum(1, dtype=torch.uint8)


def _unpack_bits(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_pack_bits`: ``[k]`` uint8 -> ``[8 k]`` bool."""
    return ((packed[:, None] >> _BITS.to(packed.device)) & 1).bool().reshape(-1)
