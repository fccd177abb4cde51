"""Everything a run needs, built from its config: model, generator, sandbox, buffer, optimiser, logger.

Kept apart from :mod:`azr.selfplay` so the step reads as the algorithm only. Every input is checked
before anything on disk is touched: a bad model path, an unwritable output directory or a corrupt
checkpoint is one clear :class:`RunError`, and existing run data is left as it was.
"""

from __future__ import annotations

import copy
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from azr import checkpoint, fsdp, lora
from azr.buffer.seeds import seed_buffer
from azr.buffer.store import TaskBuffer
from azr.config import Config, first_line, save_config
from azr.distributed import Dist
from azr.fsdp import ParallelismError
from azr.generation import Generator, HFGenerator
from azr.metrics import MetricsLogger
from azr.tasks import register_task_type
from azr.tasks.absolute_zero import induction_type
from azr.tasks.prompts import conversation
from sandbox import Sandbox
from sandbox.factory import make_sandbox


class RunError(RuntimeError):
    """A run cannot start; the message says which input is wrong and what to do."""


@dataclass
class Components:
    cfg: Config
    run_dir: Path
    model: Any
    tokenizer: Any
    generator: Generator
    sandbox: Sandbox
    buffer: TaskBuffer | None  # rank 0 only: the other ranks never touch the buffer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    rng: random.Random
    logger: MetricsLogger
    start_step: int = 0
    ref_model: Any = None
    latest: str | None = None
    dist: Dist = field(default_factory=Dist)

    def close(self) -> None:
        closers = [self.logger.close, self.sandbox.close] + ([self.buffer.close] if self.buffer is not None else [])
        for fn in closers:
            try:
                fn()
            except Exception:  # noqa: BLE001 - closing must not hide the real error
                pass


def wrap_prompt(c: Components, user_text: str) -> str:
    """The R1-style wrapper the paper uses for base models: reasoning opened inside <think>."""
    return conversation(user_text)


def build_components(cfg: Config, dist: Dist | None = None) -> Components:
    """Every rank builds its model, generator and sandbox; rank 0 alone opens the buffer and writes files."""
    try:
        dist = dist or Dist.from_env()
    except ParallelismError as exc:
        raise RunError(str(exc)) from None
    run_dir = Path(cfg.trainer.output_dir)
    check_generation_backend(cfg, dist)  # a missing vLLM or server fails here, before the run directory exists
    check_sharding(cfg, dist)
    if dist.is_main:
        ensure_writable(run_dir)
    if "induction" in cfg.tasks.types:  # the run's induction shape (inputs written / shown)
        register_task_type(induction_type(cfg.tasks.induction_inputs, cfg.tasks.induction_shown), replace=True)
    resume_from = resume_checkpoint(cfg, run_dir)
    state = checkpoint.load_state(resume_from) if resume_from else None  # validated before use
    rng = random.Random(cfg.trainer.seed)
    random.seed(cfg.trainer.seed + dist.rank)
    torch.manual_seed(cfg.trainer.seed + dist.rank)  # each rank samples its own rollouts
    ref_model = None
    if dist.fsdp is None:
        tokenizer, model = load_policy(cfg, resume_from, dist.device)
        dist.broadcast_parameters(model)  # replicas start identical whatever their initialisation did
    else:  # FSDP: loaded on the CPU, each layer moves to the device as it is sharded (azr.fsdp.shard)
        tokenizer, model = load_policy(cfg, resume_from, torch.device("cpu"))
        try:
            if cfg.rl.kl_coef > 0:  # the frozen reference is sharded the same way
                ref_model = fsdp.shard(copy.deepcopy(model).eval().requires_grad_(False), dist.fsdp, dist.device,
                                       dist.world)
            fsdp.shard(model, dist.fsdp, dist.device, dist.world)
        except ParallelismError as exc:
            raise RunError(str(exc)) from None
    generator = make_generator(cfg, model, tokenizer, dist)
    sandbox = make_sandbox(cfg.sandbox.backend, workers=cfg.sandbox.workers, timeout_s=cfg.sandbox.timeout_s,
                           memory_mb=cfg.sandbox.memory_mb, address=cfg.sandbox.ray_address)
    buffer = open_buffer(cfg, run_dir, sandbox, resume_from) if dist.is_main else None
    optimizer = torch.optim.AdamW(lora.trainable_parameters(model), lr=cfg.rl.lr, weight_decay=cfg.rl.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    start_step = 0
    if state is not None:
        try:  # an FSDP checkpoint's optimizer state is keyed by parameter name, a data-parallel one by index
            if dist.fsdp is not None:
                fsdp.load_optimizer(model, optimizer, state["optimizer"])
            else:
                optimizer.load_state_dict(fsdp.by_index(state["optimizer"], fsdp.trainable_names(model)))
        except ParallelismError as exc:
            raise RunError(f"trainer.resume ({resume_from}): {exc}") from None
        scheduler.load_state_dict(state["scheduler"])
        start_step = int(state["trainer"]["step"])
        own = state["rng_ranks"].get(dist.rank)
        checkpoint.restore_rng(own if own is not None else state["rng"], rng)
        if own is None and dist.rank > 0:  # resumed with more ranks than saved: a fresh stream per rank
            torch.manual_seed(cfg.trainer.seed + 1000 * start_step + dist.rank)
    if cfg.rl.kl_coef > 0 and ref_model is None:  # LoRA: the policy itself with its adapters off (see lora.adapters_off)
        ref_model = model if cfg.model.lora.enabled else copy.deepcopy(model).eval().requires_grad_(False)
    if dist.is_main:
        save_config(cfg, run_dir / "config.yaml")
        logger: Any = MetricsLogger(run_dir, cfg.trainer.report_to, run_name=cfg.trainer.run_name,
                                    wandb_project=cfg.trainer.wandb_project, resume_step=start_step)
    else:
        logger = SilentLogger()
    return Components(cfg, run_dir, model, tokenizer, generator, sandbox, buffer, optimizer, scheduler, rng,
                      logger, start_step, ref_model, latest=str(resume_from) if resume_from else None, dist=dist)


class SilentLogger:
    """The metrics sink of ranks other than 0: rank 0 logs the step's metrics for all."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def open_buffer(cfg: Config, run_dir: Path, sandbox: Sandbox, resume_from: Path | None) -> TaskBuffer:
    """The run's task buffer: restored from the checkpoint on resume, else new and seeded."""
    buffer_path = Path(cfg.buffer.path) if cfg.buffer.path else run_dir / "buffer.sqlite"
    if resume_from is not None:
        return TaskBuffer.restore(resume_from / checkpoint.BUFFER, buffer_path)
    buffer = TaskBuffer(buffer_path)
    report = seed_buffer(buffer, sandbox, seed_file=cfg.buffer.seed_file or None, types=tuple(cfg.tasks.types))
    if report.added == 0 and len(buffer) == 0:
        buffer.close()
        raise RunError(f"buffer.seed_file: no valid seed task in {cfg.buffer.seed_file or 'the identity seeds'}")
    return buffer


def check_generation_backend(cfg: Config, dist: Dist) -> None:
    """What the generation backend needs that the config cannot show (vLLM installed, a GPU, a server)."""
    if cfg.generation.backend == "vllm":
        from azr.generation_vllm import VLLMUnavailable, check_vllm

        try:
            check_vllm(cfg.generation, dist.world)
        except VLLMUnavailable as exc:
            raise RunError(str(exc)) from None


def check_sharding(cfg: Config, dist: Dist) -> None:
    """What FSDP (azr.fsdp) cannot run with yet fails before anything is loaded."""
    if dist.fsdp is None:
        return
    if cfg.model.lora.enabled:
        raise RunError("model.lora.enabled: FSDP with LoRA is not supported yet; run LoRA data parallel "
                       "(configs/accelerate/ddp.yaml) or train the full model under FSDP")
    if cfg.generation.backend != "hf":
        raise RunError(f"generation.backend: {cfg.generation.backend} with FSDP is not supported yet; use "
                       "generation.backend=hf or run data parallel (configs/accelerate/ddp.yaml)")


def make_generator(cfg: Config, model: Any, tokenizer: Any, dist: Dist) -> Generator:
    if cfg.generation.backend == "vllm":
        from azr.generation_vllm import VLLMUnavailable, make_vllm_generator

        try:
            return make_vllm_generator(cfg, model, tokenizer)
        except VLLMUnavailable as exc:
            raise RunError(str(exc)) from None
    sharded = dist.fsdp is not None  # FSDP: the ranks generate in step
    return HFGenerator(model, tokenizer, batch_size=cfg.generation.batch_size,
                       max_over_ranks=(lambda n: int(dist.max(n))) if sharded else None,
                       cache_implementation=cfg.generation.cache_implementation or None)


def ensure_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".azr-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"trainer.output_dir: cannot write to {run_dir} ({exc.strerror}); "
                       "choose a writable directory") from None


def resume_checkpoint(cfg: Config, run_dir: Path) -> Path | None:
    mode = cfg.trainer.resume
    if mode == "never":
        if checkpoint.latest(run_dir) is not None:
            raise RunError(f"trainer.output_dir: {run_dir} already holds a run; pass trainer.resume=auto to "
                           "continue it or choose another output_dir (nothing was changed)")
        return None
    if mode == "auto":
        return checkpoint.latest(run_dir)
    path = Path(mode)
    if not path.is_dir():
        raise RunError(f"trainer.resume: checkpoint {path} does not exist")
    return path


def resolve_model(name_or_path: str) -> str:
    if name_or_path.startswith("embedded:"):
        from azr.embedded import resolve_model_path

        return resolve_model_path(name_or_path)
    if os.path.isdir(name_or_path):
        if not (Path(name_or_path) / "config.json").is_file():
            raise RunError(f"model.name_or_path: {name_or_path} has no config.json; point it at a Hugging Face "
                           "checkpoint directory (save_pretrained output)")
        return name_or_path
    # A hub id is "name" or "org/name"; anything else that is not a directory is a missing path.
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise RunError(f"model.name_or_path: {name_or_path} does not exist")
    return name_or_path  # a hub id; loading reports if it cannot be fetched


def load_policy(cfg: Config, resume_from: Path | None, device: torch.device) -> tuple[Any, Any]:
    """The tokenizer and the policy: full weights (from the checkpoint when resuming), or with LoRA the
    base from ``model.name_or_path`` under adapters (fresh, or the checkpoint's, trainable)."""
    lcfg = cfg.model.lora
    if resume_from is not None:
        found, wanted = lora.model_kind(resume_from / checkpoint.MODEL), lora.expected_kind(lcfg)
        if found != wanted:
            raise RunError(f"model.lora: checkpoint {resume_from} holds {_KIND_TEXT[found]} but the config asks for "
                           f"{_KIND_TEXT[wanted]}; resume with the run's own model.lora settings or start a new "
                           "output_dir")
    if not lcfg.enabled:
        path = str(resume_from / checkpoint.MODEL) if resume_from else resolve_model(cfg.model.name_or_path)
        return load_model(path, cfg, device)
    tokenizer, base = load_model(resolve_model(cfg.model.name_or_path), cfg, device)
    grad_ckpt = cfg.model.gradient_checkpointing
    try:
        if resume_from is not None:
            model = lora.load(base, resume_from / checkpoint.MODEL, gradient_checkpointing=grad_ckpt)
        else:
            model = lora.wrap(base, lcfg, gradient_checkpointing=grad_ckpt)
    except (OSError, ValueError, RuntimeError) as exc:  # a module name the model lacks, adapters of another base
        first = first_line(exc)
        where = "model.lora.target_modules" if resume_from is None else f"trainer.resume ({resume_from})"
        raise RunError(f"{where}: cannot put LoRA adapters on {cfg.model.name_or_path!r}: {first}") from None
    print(lora.summary(model), flush=True)
    return tokenizer, model


_KIND_TEXT = {"full": "full model weights (LoRA off)", "lora": "one LoRA adapter (model.lora.enabled=true)",
              "lora-per-role": "per-role LoRA adapters (model.lora.per_role=true)", None: "no model"}


def load_model(path: str, cfg: Config, device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = cfg.model.dtype
    if dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise RunError(f"model.name_or_path: cannot load {path!r}: {first_line(exc)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return tokenizer, model


def lr_lambda(cfg: Config):
    warmup, total, kind = cfg.rl.warmup_steps, max(cfg.trainer.max_steps, 1), cfg.rl.lr_schedule

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
