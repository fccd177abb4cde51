"""Checkpoints: everything needed to continue a run as if it had never stopped.

A checkpoint is a directory ``<output_dir>/checkpoints/step-NNNNNN/`` holding the model in HF
format (``from_pretrained`` loads it), the tokenizer, optimizer and scheduler states, RNG states
(python, numpy, torch), the trainer state, the resolved config and a consistent snapshot of the
task buffer. With LoRA the model folder holds the adapters only, in peft's format (one subfolder per
adapter for per-role adapters); ``azr export --merge`` turns them into a full model. It is written to a temporary directory and renamed into place, so a run killed while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from azr.config import save_config
from azr.lora import model_kind

if TYPE_CHECKING:
    from azr.components import Components

FORMAT_VERSION = 1
MODEL = "model"
BUFFER = "buffer.sqlite"
STATE = "trainer_state.json"
FILES = (STATE, "optimizer.pt", "scheduler.pt", "rng.pt", BUFFER, "config.yaml")


class CheckpointError(RuntimeError):
    """A checkpoint is missing files or unreadable; the message names the file."""


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run (complete = its trainer state was written)."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step-*") if (p / STATE).is_file())
    return done[-1] if done else None


def rng_state(rng: random.Random) -> dict[str, Any]:
    return {"run": rng.getstate(), "python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict[str, Any], rng: random.Random) -> None:
    rng.setstate(state["run"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(c: Components, step: int) -> Path:
    """Rank 0 writes the checkpoint; other ranks hand it their RNG states and weight fingerprints.

    ``trainer_state.json`` records every rank's parameter fingerprint, so a multi-process run's
    checkpoint says whether the replicas were identical when it was written. A model sharded with FSDP
    has no replicas: every rank helps gather the full weights and optimizer state to rank 0, which
    writes them as a single-process run would, and the fingerprint is that of the full weights."""
    from azr.distributed import parameter_fingerprint

    rngs = c.dist.gather(rng_state(c.rng))
    full: tuple[dict[str, Any], dict[str, Any]] | None = None
    if c.dist.fsdp is not None:
        from azr.fsdp import full_state

        full = full_state(c.model, c.optimizer)
        fingerprints = [parameter_fingerprint(c.model, full[0])] if c.dist.is_main else []
    else:
        fingerprints = c.dist.gather(parameter_fingerprint(c.model)) if c.dist.enabled else []
    final = checkpoints_dir(c.run_dir) / f"step-{step:06d}"
    if c.dist.is_main:
        _write(c, step, final, rngs, fingerprints, full)
    c.dist.barrier()  # no rank moves on (or reads the checkpoint) before it is complete
    c.latest = str(final)
    return final


def _write(c: Components, step: int, final: Path, rngs: list[dict[str, Any]], fingerprints: list[str],
           full: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    root = checkpoints_dir(c.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights, optimizer = full if full is not None else (None, c.optimizer.state_dict())
    c.model.save_pretrained(tmp / MODEL, safe_serialization=True, state_dict=weights)
    c.tokenizer.save_pretrained(tmp / MODEL)
    torch.save(optimizer, tmp / "optimizer.pt")  # FSDP: keyed by parameter name, else by index
    torch.save(c.scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rngs[0], tmp / "rng.pt")
    for rank, state in enumerate(rngs[1:], start=1):
        torch.save(state, tmp / f"rng-rank{rank}.pt")
    c.buffer.snapshot(tmp / BUFFER)
    save_config(c.cfg, tmp / "config.yaml")
    state = {"step": step, "format": FORMAT_VERSION, "time": time.time(), "buffer_tasks": len(c.buffer),
             "world_size": c.dist.world}
    if full is not None:
        state["fsdp"], state["fingerprint"] = True, fingerprints[0]
    elif fingerprints:
        state["rank_fingerprints"] = fingerprints
    (tmp / STATE).write_text(json.dumps(state))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    older = sorted(p for p in root.glob("step-*") if p != final)
    keep_older = max(1, c.cfg.trainer.keep_checkpoints) - 1  # the one just written counts
    for old in older[: len(older) - keep_older]:
        shutil.rmtree(old, ignore_errors=True)


def _load_pickle(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"checkpoint {path}: corrupt or unreadable ({type(exc).__name__}); "
                              "resume from another checkpoint") from None


def load_state(path: Path) -> dict[str, Any]:
    """Read and check every part of a checkpoint before the run touches anything."""
    path = Path(path)
    for name in FILES:
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path}: missing {name}; resume from another checkpoint "
                                  "or start a new output_dir")
    if model_kind(path / MODEL) is None:
        raise CheckpointError(f"checkpoint {path}: missing {MODEL}/config.json (full model) or "
                              f"{MODEL}/adapter_config.json (LoRA adapters)")
    try:
        trainer = json.loads((path / STATE).read_text())
        int(trainer["step"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path / STATE}: unreadable ({exc})") from None
    if trainer.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path / STATE}: format {trainer.get('format')} is not "
                              f"{FORMAT_VERSION}; this azr version cannot resume it")
    out: dict[str, Any] = {"trainer": trainer}
    for key, name in (("optimizer", "optimizer.pt"), ("scheduler", "scheduler.pt"), ("rng", "rng.pt")):
        out[key] = _load_pickle(path / name)
    out["rng_ranks"] = {int(p.stem.removeprefix("rng-rank")): _load_pickle(p) for p in sorted(path.glob("rng-rank*.pt"))}
    try:
        import sqlite3

        conn = sqlite3.connect(f"file:{path / BUFFER}?mode=ro", uri=True)
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"checkpoint {path / BUFFER}: not a valid buffer ({exc})") from None
    if ok != "ok":
        raise CheckpointError(f"checkpoint {path / BUFFER}: integrity check failed ({ok})")
    return out
