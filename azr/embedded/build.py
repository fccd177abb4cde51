"""Build the embedded default model end to end: corpus -> tokenizer -> Qwen2 -> SFT -> probe -> save.

The checkpoint is assembled in a temporary sibling directory and renamed into place, so a reader
never sees half a model, and a second process building at the same time simply loses the race.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from azr.embedded.corpus import CorpusConfig, build_corpus
from azr.embedded.model import ModelShape, count_parameters, make_model
from azr.embedded.probe import probe
from azr.embedded.sft import SFTConfig, train
from azr.embedded.tokenizer import train_tokenizer
from sandbox import Sandbox

log = logging.getLogger("azr.embedded")

BUILD_INFO = "build_info.json"
PROMPT_FORMAT = "azr.tasks.prompts.conversation(<registry prompt, style 'compact'>)"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the checkpoint (together with the seed)."""

    corpus: CorpusConfig = CorpusConfig()
    sft: SFTConfig = SFTConfig()
    shape: ModelShape = ModelShape()
    vocab_size: int = 2048  # byte-level BPE saturates near 3.5k merges on this corpus; 2k compresses as well
    probe_per_role: int = 16  # 0 skips the probe
    probe_max_new_tokens: tuple[int, int] = (256, 128)  # (propose, solve), as configs/tiny.yaml
    threads: int = 2
    sandbox_workers: int = 2


@dataclass
class BuildInfo:
    """What ``build_info.json`` records about a build."""

    name: str
    seed: int
    parameters: int
    vocab_size: int
    corpus_programs: int
    corpus_examples: int
    examples_per_role: dict[str, int]
    sft_steps: int
    tokens_seen: int
    first_loss: float
    final_loss: float
    seconds: dict[str, float] = field(default_factory=dict)  # per stage and "total"
    probe: dict[str, float] = field(default_factory=dict)  # role -> valid/solve fraction
    probe_samples_per_role: int = 0
    probe_failures: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> reason -> count
    prompt_format: str = PROMPT_FORMAT
    config: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> BuildInfo:
        with open(Path(path) / BUILD_INFO, encoding="utf-8") as fh:
            return cls(**json.load(fh))


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def build_embedded_model(
    out_dir: str | Path,
    seed: int = 0,
    config: BuildConfig | None = None,
    progress: Progress | None = None,
    name: str = "embedded:tiny",
) -> BuildInfo:
    """Build the model into ``out_dir`` (which must not exist yet) and return its build info."""
    config = config or BuildConfig()
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or pick another directory to rebuild")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda stage, done, total: None)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        info = _build(tmp, seed, config, report, name)
        with open(tmp / BUILD_INFO, "w", encoding="utf-8") as fh:
            fh.write(info.to_json())
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the result is an ordinary directory
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / BUILD_INFO).exists():
                raise
            log.info("another process finished building %s first; keeping its copy", out)
        return info
    finally:
        torch.set_num_threads(old_threads)
        shutil.rmtree(tmp, ignore_errors=True)


def _build(tmp: Path, seed: int, config: BuildConfig, report: Progress, name: str) -> BuildInfo:
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with Sandbox(workers=config.sandbox_workers, timeout_s=5.0, memory_mb=512) as sb:
        report("corpus", 0, 1)
        grounded, examples = build_corpus(sb, config.corpus, seed)
        seconds["corpus"] = time.perf_counter() - t0
        log.info("corpus: %d programs, %d examples (%.1fs)", len(grounded), len(examples), seconds["corpus"])
        report("corpus", 1, 1)

        t = time.perf_counter()
        tokenizer = train_tokenizer((e.prompt + e.reply for e in examples), config.vocab_size,
                                    config.shape.max_position_embeddings)
        model = make_model(tokenizer, config.shape, seed)
        seconds["tokenizer"] = time.perf_counter() - t
        log.info("tokenizer: %d tokens; model: %.2fM parameters", len(tokenizer), count_parameters(model) / 1e6)

        sft_cfg = dataclasses.replace(config.sft, seed=seed)
        every = max(1, sft_cfg.steps // 10)

        def on_step(step: int, loss: float) -> None:
            report("sft", step + 1, sft_cfg.steps)
            if (step + 1) % every == 0 or step == 0:
                log.info("sft step %d/%d loss %.3f", step + 1, sft_cfg.steps, loss)

        sft = train(model, tokenizer, examples, sft_cfg, on_step)
        seconds["sft"] = sft.seconds

        probed: dict[str, float] = {}
        failures: dict[str, dict[str, int]] = {}
        if config.probe_per_role > 0:
            report("probe", 0, 1)
            result = probe(model, tokenizer, sb, n_per_role=config.probe_per_role, seed=seed,
                           max_new_tokens=config.probe_max_new_tokens)
            probed, failures = result.rates, result.failures
            seconds["probe"] = result.seconds
            log.info("probe: %s", ", ".join(f"{k} {v:.2f}" for k, v in probed.items()))
            report("probe", 1, 1)

    t = time.perf_counter()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    seconds["save"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return BuildInfo(
        name=name,
        seed=seed,
        parameters=count_parameters(model),
        vocab_size=len(tokenizer),
        corpus_programs=len(grounded),
        corpus_examples=len(examples),
        examples_per_role=dict(Counter(e.role for e in examples)),
        sft_steps=sft.steps,
        tokens_seen=sft.tokens_seen,
        first_loss=round(sft.first_loss, 4),
        final_loss=round(sft.final_loss, 4),
        seconds={k: round(v, 2) for k, v in seconds.items()},
        probe={k: round(v, 3) for k, v in probed.items()},
        probe_samples_per_role=config.probe_per_role,
        probe_failures=failures,
        config=dataclasses.asdict(config),
    )
