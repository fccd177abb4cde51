"""Load a checkpoint and sample responses, through the project's generation interface.

Sampling goes through :class:`azr.generation.HFGenerator` (the trainer's backend), so evaluation and
training decode the same way; another backend only has to provide the same ``generate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModelLoadError(RuntimeError):
    """The model or tokenizer could not be loaded; the message says what to pass instead."""


@dataclass(frozen=True)
class SamplingConfig:
    samples: int = 1
    temperature: float = 0.0  # 0 = greedy, the paper's setting for its main tables
    top_p: float = 1.0
    max_new_tokens: int = 4096
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {self.samples}")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("--samples > 1 needs --temperature > 0: greedy samples are all identical")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")


def load_model(path_or_id: str, device: str = "cpu", dtype: str = "auto") -> tuple[Any, Any]:
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from a local directory or a hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from azr.lora import model_kind

    local = Path(path_or_id).expanduser()
    source = str(local) if local.exists() else path_or_id
    if local.exists() and model_kind(local) in ("lora", "lora-per-role"):
        raise ModelLoadError(f"--model {path_or_id}: {local} holds LoRA adapters, not a model; make a full model "
                             "with `azr export RUN_DIR --merge OUT` and pass OUT")
    if local.exists() and not (local / "config.json").is_file():
        raise ModelLoadError(f"--model {path_or_id}: {local} has no config.json (expected a save_pretrained folder)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        where = "this folder" if local.exists() else "the Hugging Face hub (unreachable offline?)"
        raise ModelLoadError(
            f"--model {path_or_id}: could not load it from {where}: {exc}. "
            "Pass the path of a checkpoint saved with save_pretrained."
        ) from exc
    return model.to(device).eval(), tokenizer


def sample(model: Any, tokenizer: Any, prompts: Sequence[str], config: SamplingConfig,
           add_special_tokens: bool = True, on_done: Callable[[int], None] | None = None) -> list[list[str]]:
    """``config.samples`` response texts per prompt, in prompt order. Prompts go to the generator in
    chunks so a progress bar can follow; each chunk gets its own seed derived from ``config.seed``."""
    from azr.generation import HFGenerator, SamplingParams

    generator = HFGenerator(model, tokenizer, batch_size=config.batch_size, add_special_tokens=add_special_tokens)
    chunk = max(1, config.batch_size // config.samples)
    out: list[list[str]] = []
    for n, start in enumerate(range(0, len(prompts), chunk)):
        params = SamplingParams(
            max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p,
            n=config.samples, seed=config.seed + n,
        )
        part = prompts[start : start + chunk]
        out.extend([g.text for g in row] for row in generator.generate(part, params))
        if on_done:
            on_done(len(part))
    return out
