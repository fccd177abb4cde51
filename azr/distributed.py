"""Data parallelism for self-play: split the step's work across processes, keep the replicas identical.

Started by ``accelerate launch`` (or ``torchrun``): accelerate's :class:`~accelerate.PartialState` reads
the launcher's environment and sets up the process group (NCCL on GPUs, gloo on CPUs). Outside a
launcher every call here is a no-op on one process, so the single-process path is unchanged.

How a step uses it (see :mod:`azr.selfplay`):

* rank 0 alone reads and writes the task buffer; what it samples is broadcast (:meth:`Dist.broadcast`);
* generation and sandbox work are split with :meth:`Dist.map` (round-robin shards, results all-gathered
  in the original order), so every rank ends the phase holding the same full list;
* each rank back-propagates its shard of the samples; :meth:`Dist.sum_gradients` all-reduces the
  gradients before the optimiser step, so every replica takes the same step.

Why gradients are summed by hand rather than through ``DistributedDataParallel``: the trainer scores
completions by calling the model's body and applying the LM head only at completion positions
(:func:`azr.generation.sequence_logprobs`), which bypasses ``DDP.forward`` and so its reducer; and the
ranks hold different numbers of micro-batches, which DDP's per-backward hooks would deadlock on. Each
rank's loss is a partial sum of the global loss (one shared denominator), so summing gradients gives
exactly the full-batch gradient.

With an FSDP accelerate config (``configs/accelerate/fsdp.yaml``) the model is sharded instead of
replicated (:mod:`azr.fsdp`): the same split of work, but FSDP reduce-scatters the gradients inside each
backward, so :meth:`Dist.sum_gradients` has nothing to do, and every FSDP forward/backward is a
collective that all ranks must run together (``Dist.map(..., every_rank=True)``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from azr.fsdp import FsdpSettings, settings_from_env

T = TypeVar("T")
R = TypeVar("R")

# Gradients are all-reduced in flat buckets of about this many elements (one collective per bucket,
# bounded extra memory on large models).
BUCKET_ELEMENTS = 32 * 1024 * 1024


@dataclass
class Dist:
    """This process's place in the job: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    fsdp: FsdpSettings | None = None  # set: the model is sharded across the ranks (azr.fsdp)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> Dist:
        """Join the launcher's process group when there is one (``WORLD_SIZE`` > 1), else one process.
        Raises :class:`azr.fsdp.ParallelismError` for a launcher setting azr cannot run (DeepSpeed)."""
        fsdp = settings_from_env()  # one process has nothing to shard: FSDP settings only matter for several
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
            return cls(0, 1, device)
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(state.process_index, state.num_processes, torch.device(state.device), fsdp)

    # ---- collectives ---------------------------------------------------------------------------------

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (any picklable object)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def map(self, fn: Callable[[list[T]], Sequence[R]], items: Sequence[T], every_rank: bool = False) -> list[R]:
        """``fn(items)`` computed in shards: rank r runs ``fn`` on items r, r + world, ...; all ranks get
        the full result in the order of ``items``. ``fn`` must return one result per item.
        ``every_rank``: ``fn`` runs collectives (FSDP forwards), so it runs even on an empty shard."""
        if not self.enabled:
            return list(fn(list(items)))
        mine = list(items[self.rank :: self.world])
        local = list(fn(mine)) if mine or every_rank else []
        if len(local) != len(mine):
            raise RuntimeError(f"Dist.map: {len(mine)} items gave {len(local)} results")
        shards = self.gather(local)
        out: list[Any] = [None] * len(items)
        for r, shard in enumerate(shards):
            out[r :: self.world] = shard
        return out

    def sum_stats(self, stats: dict[str, float]) -> dict[str, float]:
        """Per-key sum over ranks (keys missing on a rank count as 0)."""
        return self._combine_stats(stats, lambda a, b: a + b)

    def max_stats(self, stats: dict[str, float]) -> dict[str, float]:
        """Per-key maximum over ranks (keys missing on a rank are skipped there)."""
        return self._combine_stats(stats, max)

    def _combine_stats(self, stats: dict[str, float], combine: Callable[[float, float], float]) -> dict[str, float]:
        """Every rank's ``stats`` folded key by key with ``combine``, in one collective."""
        if not self.enabled:
            return dict(stats)
        out: dict[str, float] = {}
        for part in self.gather(stats):
            for k, v in part.items():
                out[k] = combine(out[k], float(v)) if k in out else float(v)
        return out

    def max(self, value: float) -> float:
        return max(self.gather(float(value))) if self.enabled else float(value)

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    # ---- parameters ----------------------------------------------------------------------------------

    def sum_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """All-reduce (sum) the gradients of ``params`` in flat buckets. A parameter that got a gradient
        on some rank but not this one counts 0 here; one that got none anywhere keeps ``None``, so the
        optimiser skips it exactly as a single process would (per-role adapters rely on this).
        Under FSDP the backward passes already reduce-scattered (summed) the gradients: nothing to do."""
        if not self.enabled or self.fsdp is not None:
            return
        # on the process group's device: NCCL reduces CUDA tensors only
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=self.device)
        torch.distributed.all_reduce(present, op=torch.distributed.ReduceOp.SUM)
        grads = []
        for p, anywhere in zip(params, present.tolist(), strict=True):
            if not anywhere:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        bucket: list[torch.Tensor] = []
        size = 0
        for g in grads:
            bucket.append(g)
            size += g.numel()
            if size >= BUCKET_ELEMENTS:
                _all_reduce_flat(bucket)
                bucket, size = [], 0
        if bucket:
            _all_reduce_flat(bucket)

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (replicas start identical)."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, src=0)


def _all_reduce_flat(tensors: list[torch.Tensor]) -> None:
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def parameter_fingerprint(module: torch.nn.Module, weights: dict[str, torch.Tensor] | None = None) -> str:
    """SHA-256 of every parameter's bytes, in name order: equal fingerprints mean identical weights.
    ``weights``: take each parameter's value from this (full) state dict instead (a sharded model)."""
    h = hashlib.sha256()
    named = [(n, weights[n] if weights is not None else p) for n, p in module.named_parameters()]
    for name, p in sorted(named, key=lambda kv: kv[0]):
        h.update(name.encode())
        h.update(p.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
