"""Run configuration: typed sections with documented defaults, YAML files, dotted overrides, validation.

Defaults are the paper's settings (arXiv 2505.03335, Table 3, as run by the official code's paper
branch) except the model, which defaults to the built-in tiny model; ``configs/tiny.yaml`` shrinks
everything for a CPU run. A YAML file may start with ``base: other.yaml`` (or a list) to inherit from
files next to it. ``load_config`` reports a bad value, a wrong type or an unknown key by its dotted name,
e.g. ``rl.clip_eps: must be in (0, 1), got 3``.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from azr.generation import SamplingParams
from azr.rl import LOSS_AGGREGATIONS, RewardScheme
from azr.tasks.record import TASK_TYPES


class ConfigError(ValueError):
    """A configuration problem; the message names the offending field or file and what is allowed."""


# --- sections ---------------------------------------------------------------------------------------


@dataclass
class LoraConfig:
    """LoRA adapters (peft, see :mod:`azr.lora`). Off by default: AZR trains all weights. With LoRA the
    base stays frozen, checkpoints hold the adapters, and ``azr export --merge`` makes a full model."""

    enabled: bool = False
    r: int = 16  # adapter rank
    alpha: int = 32  # scaling numerator: the update is scaled by alpha / r
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    per_role: bool = False  # separate proposer and solver adapters ("propose", "solve") on one base


@dataclass
class ModelConfig:
    """The policy: one model plays both proposer and solver."""

    name_or_path: str = (
        "embedded:tiny"  # "embedded:tiny" = the project's built-in model; else an HF id or dir
    )
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 ("auto": bfloat16 on GPU, float32 on CPU)
    trust_remote_code: bool = False
    gradient_checkpointing: bool = False  # trade compute for memory on long responses
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class VLLMConfig:
    """vLLM backend (``generation.backend: vllm``), through TRL's generation utilities."""

    mode: str = "colocate"  # colocate (same GPUs as training) | server (a `trl vllm-serve` process)
    gpu_memory_utilization: float = 0.4  # colocate: share of GPU memory for weights + KV cache
    tensor_parallel_size: int = 1  # colocate: must divide the trainer processes; server: set on the server
    server_url: str = ""  # server mode: e.g. http://localhost:8000
    max_model_len: int = 0  # colocate: context length; 0 = max_prompt_tokens + the longer max_new_tokens
    enable_sleep_mode: bool = False  # colocate: free vLLM's GPU memory during the update (slower steps)


@dataclass
class GenerationSettings:
    """Sampling for training rollouts (proposals, solutions and learnability rollouts alike).

    Learnability rollouts are sampled at this temperature too: the official master branch samples them
    greedily by accident, which collapses every solve rate to 0 or 1.
    """

    backend: str = "hf"  # hf (transformers generate) | vllm
    batch_size: int = 16  # hf backend: sequences per generate call
    # hf backend: transformers' KV cache ("" = its default, the dynamic cache; "static" preallocates the
    # cache once per call instead of growing it token by token, faster on CPU for long prompts)
    cache_implementation: str = ""
    max_prompt_tokens: int = 6144  # longer prompts are dropped, never truncated
    max_new_tokens_propose: int = 8096
    max_new_tokens_solve: int = 8096
    temperature: float = 1.0  # must be > 0: training samples
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop: list[str] = field(default_factory=lambda: ["</answer>"])  # nothing after the answer is used
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    @property
    def longest_sequence(self) -> int:
        """The longest prompt plus the longest completion: the context a rollout can need."""
        return self.max_prompt_tokens + max(self.max_new_tokens_propose, self.max_new_tokens_solve)

    def sampling(self, role: str, n: int = 1, seed: int | None = None) -> SamplingParams:
        """The sampling parameters for one role ("propose" or "solve") of this run."""
        if role not in ("propose", "solve"):
            raise ValueError(f"generation.sampling: role must be 'propose' or 'solve', got {role!r}")
        return SamplingParams(
            max_new_tokens=getattr(self, f"max_new_tokens_{role}"),
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            n=n,
            stop=tuple(self.stop),
            seed=seed,
        )


@dataclass
class SandboxConfig:
    """The isolated executor that runs every model-written program."""

    workers: int = 4  # parallel sandbox processes
    timeout_s: float = 10.0  # wall clock per run (official: 10 s)
    memory_mb: int = 1024  # address-space limit per run
    backend: str = "local"  # local (process pool on this machine) | ray (workers as Ray actors)
    ray_address: str = ""  # ray backend: "" starts a local Ray; "auto" or host:port joins a running cluster


@dataclass
class TasksConfig:
    """Which task types are played and how tasks are posed and validated."""

    types: list[str] = field(default_factory=lambda: list(TASK_TYPES))  # deduction | abduction | induction
    references: int = 6  # K: same-type buffer tasks shown to the proposer
    induction_inputs: int = 10  # inputs the induction proposer writes
    induction_shown: int = 5  # of which shown to the solver; the rest are held out
    prompt_style: str = "paper"  # paper (the official prompts' content) | compact (short, for small models)
    banned_modules: list[str] | None = None  # deny list of importable modules; null = the built-in list
    max_program_chars: int = 4000  # longer programs are rejected
    max_output_chars: int = 1000  # canonical output size cap: larger outputs are rejected, never truncated
    check_determinism: bool = True  # run twice with different seeds; results must agree


@dataclass
class BufferConfig:
    """The persistent task buffer (one SQLite file per run)."""

    path: str = ""  # "" = <trainer.output_dir>/buffer.sqlite
    seed_file: str = ""  # JSONL of seed tasks; "" = generate seeds with the model at step 0
    seed_count: int = 256  # seed tasks per type to generate when there is no seed file (official: 4 x 64)
    max_tasks: int = 16384  # per type; the oldest are evicted beyond it (the official code kept the oldest)
    sampling: str = "recent"  # recent (the last step's tasks first, topped up uniformly) | uniform


@dataclass
class RLConfig:
    """Rewards, advantages (TRR++), the PPO-clip loss and the optimiser."""

    batch_per_type_role: int = 64  # B: samples per (task type, role) group per step (6 groups)
    learnability_rollouts: int = 8  # n: solver rollouts per valid proposal to estimate its solve rate
    rewards: RewardScheme = field(default_factory=RewardScheme)
    advantage_std: str = "unbiased"  # unbiased (n - 1) | population (n)
    advantage_eps: float = 1e-6
    advantage_clip: float | None = None  # bound |advantage|; null = off
    clip_eps: float = 0.2  # PPO clip, lower side (and upper side unless clip_eps_high is set)
    clip_eps_high: float | None = None  # null = clip_eps; 0.28 = DAPO clip-higher (official master)
    dual_clip: float | None = None  # cap on negative-advantage token loss (official master: 3); null = off
    kl_coef: float = 0.0  # KL to the initial model (k3); 0 = off and no reference model is loaded
    entropy_coef: float = 0.001  # entropy bonus (paper branch 0.001; official master 0)
    loss_aggregation: str = "token-mean"  # token-mean | seq-mean-token-mean | seq-mean-token-sum[-norm]
    ppo_epochs: int = 1  # passes over each step's batch (1: one optimiser step per training step)
    micro_batch_size: int = 8  # sequences per forward/backward (gradient accumulation)
    lr: float = 1e-6
    lr_schedule: str = "constant"  # constant | linear | cosine (after warmup)
    warmup_steps: int = 0
    weight_decay: float = 0.01  # AdamW (paper branch 0.01; official master 0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    grad_clip: float = 1.0  # max global grad norm; 0 = off


@dataclass
class TrainerConfig:
    """The loop: how long, where to write, how often to log and save."""

    max_steps: int = 500  # the paper trained 500 steps
    seed: int = 0  # seeds Python, NumPy and torch; sampling and buffer draws follow from it
    output_dir: str = "runs/azr"
    save_every: int = 10  # steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 2  # most recent checkpoints kept on disk
    log_every: int = 1
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # none | tensorboard | wandb
    run_name: str = ""  # "" = the output_dir's name
    wandb_project: str = "azr"
    resume: str = "auto"  # auto (latest checkpoint in output_dir, if any) | never | a checkpoint path


@dataclass
class EvalConfig:
    """In-training evaluation hooks."""

    every: int = 0  # steps between evaluations; 0 = off
    benchmarks: list[str] = field(default_factory=list)  # names known to azr.eval
    limit: int = 0  # problems per benchmark; 0 = all
    max_new_tokens: int = 1024  # greedy decoding


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --- loading ----------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults, then the YAML file (with its ``base`` files), then ``key.sub=value`` overrides; then
    type checks (OmegaConf structured mode) and value checks (:func:`validate`)."""
    layers: list[tuple[str, Any]] = []
    if path is not None:
        layers.extend((str(p), layer) for p, layer in _load_yaml_chain(Path(path), seen=()))
    if overrides:
        layers.append(("overrides", _parse_overrides(overrides)))
    merged = OmegaConf.structured(Config)
    for source, layer in layers:  # one layer at a time, so an error names where the bad value came from
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as exc:
            raise _translate(exc, source) from None
    try:
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _translate(exc, str(path) if path is not None else "defaults") from None
    assert isinstance(cfg, Config)
    validate(cfg)
    return cfg


def config_to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: Config, path: str | os.PathLike[str]) -> None:
    """Write the full resolved config (every field), so a run can be reproduced from it alone."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(config_to_yaml(cfg), encoding="utf-8")


def _load_yaml_chain(path: Path, seen: tuple[Path, ...]) -> list[tuple[Path, DictConfig]]:
    """The file's ``base`` files (recursively, in order), then the file itself."""
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(
            f"{path}: 'base' files form a cycle: {' -> '.join(str(p) for p in (*seen, resolved))}"
        )
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:  # yaml.YAMLError and friends: report the file, not a traceback
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got a list")
    base = loaded.pop("base", None)
    layers: list[tuple[Path, DictConfig]] = []
    for name in [base] if isinstance(base, str) else list(base or []):
        layers.extend(_load_yaml_chain(path.parent / str(name), seen=(*seen, resolved)))
    layers.append((path, loaded))
    return layers


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none): for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _parse_overrides(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        key = item.split("=", 1)[0]
        if "=" not in item or not key.strip():
            raise ConfigError(f"override {item!r}: expected key.sub=value, e.g. trainer.max_steps=20")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides: {first_line(exc)}") from None


def _all_keys(cls: type = Config, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(cls):
        name = prefix + f.name
        keys.append(name)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            keys.extend(_all_keys(type(default), name + "."))
    return keys


def _suggest(key: str) -> str:
    known = _all_keys()
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in known if k.rsplit(".", 1)[-1] == leaf]  # right name, wrong section
    close = same_leaf + [
        k for k in difflib.get_close_matches(key, known, n=2, cutoff=0.8) if k not in same_leaf
    ]
    return f"; did you mean {' or '.join(repr(c) for c in close[:2])}?" if close else ""


def _translate(exc: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(exc, "full_key", None)
    first = first_line(exc)
    if isinstance(exc, ConfigKeyError) and key:
        return ConfigError(f"{key}: unknown key (in {source}){_suggest(key)}")
    if key:
        return ConfigError(f"{key}: {first} (in {source})")
    return ConfigError(f"{source}: {first}")


# --- value checks -----------------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def need(self, ok: bool, key: str, why: str, value: Any) -> None:
        if not ok:
            self.problems.append(f"{key}: {why}, got {value!r}")

    def choice(self, key: str, value: Any, allowed: Sequence[str]) -> None:
        if value not in allowed:
            close = difflib.get_close_matches(str(value), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problems.append(f"{key}: must be one of {', '.join(allowed)}, got {value!r}{hint}")


def validate(cfg: Config) -> None:
    """Check values (ranges, choices, consistency); raise one ConfigError listing every problem."""
    c = _Checker()
    m, g, s, t, b, rl, tr, ev = (
        cfg.model,
        cfg.generation,
        cfg.sandbox,
        cfg.tasks,
        cfg.buffer,
        cfg.rl,
        cfg.trainer,
        cfg.eval,
    )

    c.need(bool(m.name_or_path.strip()), "model.name_or_path", "must not be empty", m.name_or_path)
    c.choice("model.dtype", m.dtype, ["auto", "float32", "bfloat16", "float16"])
    c.need(m.lora.r >= 1, "model.lora.r", "must be >= 1", m.lora.r)
    c.need(m.lora.alpha > 0, "model.lora.alpha", "must be > 0", m.lora.alpha)
    c.need(0 <= m.lora.dropout < 1, "model.lora.dropout", "must be in [0, 1)", m.lora.dropout)
    c.need(not m.lora.enabled or bool(m.lora.target_modules), "model.lora.target_modules",
           "must name at least one module when LoRA is enabled", m.lora.target_modules)  # fmt: skip
    c.need(all(isinstance(x, str) and x.strip() for x in m.lora.target_modules), "model.lora.target_modules",
           "must be non-empty module names, e.g. q_proj", m.lora.target_modules)  # fmt: skip
    c.need(not m.lora.per_role or m.lora.enabled, "model.lora.per_role",
           "needs model.lora.enabled=true (per-role adapters are LoRA adapters)", m.lora.per_role)  # fmt: skip

    c.choice("generation.backend", g.backend, ["hf", "vllm"])
    c.need(g.batch_size >= 1, "generation.batch_size", "must be >= 1", g.batch_size)
    c.choice("generation.cache_implementation", g.cache_implementation, ["", "dynamic", "static"])
    c.need(g.max_prompt_tokens >= 1, "generation.max_prompt_tokens", "must be >= 1", g.max_prompt_tokens)
    for role in ("propose", "solve"):
        key = f"max_new_tokens_{role}"
        c.need(getattr(g, key) >= 1, f"generation.{key}", "must be >= 1", getattr(g, key))
    c.need(g.temperature > 0, "generation.temperature",
           "must be > 0 (training samples; greedy rollouts make every solve rate 0 or 1)", g.temperature)  # fmt: skip
    c.need(0 < g.top_p <= 1, "generation.top_p", "must be in (0, 1]", g.top_p)
    c.need(g.top_k >= 0, "generation.top_k", "must be >= 0 (0 = off)", g.top_k)
    c.need(
        all(isinstance(x, str) and x for x in g.stop), "generation.stop", "must be non-empty strings", g.stop
    )
    c.choice("generation.vllm.mode", g.vllm.mode, ["colocate", "server"])
    c.need(0 < g.vllm.gpu_memory_utilization <= 1, "generation.vllm.gpu_memory_utilization", "must be in (0, 1]",
           g.vllm.gpu_memory_utilization)  # fmt: skip
    c.need(g.vllm.tensor_parallel_size >= 1, "generation.vllm.tensor_parallel_size", "must be >= 1",
           g.vllm.tensor_parallel_size)  # fmt: skip
    c.need(g.backend != "vllm" or g.vllm.mode != "server" or bool(g.vllm.server_url), "generation.vllm.server_url",
           "must be set when generation.vllm.mode is server", g.vllm.server_url)  # fmt: skip
    c.need(not g.vllm.server_url or g.vllm.server_url.startswith(("http://", "https://")),
           "generation.vllm.server_url", "must start with http:// or https://", g.vllm.server_url)
    longest = g.longest_sequence
    c.need(g.vllm.max_model_len == 0 or g.vllm.max_model_len >= longest, "generation.vllm.max_model_len",
           f"must be 0 (auto) or >= generation.max_prompt_tokens + the longer max_new_tokens = {longest}",
           g.vllm.max_model_len)  # fmt: skip
    if g.backend == "vllm":
        # vLLM reports log-probs of the top-p/top-k truncated distribution; the trainer scores the full one.
        for key, value, neutral in (("top_p", g.top_p, 1.0), ("top_k", g.top_k, 0)):
            c.need(value == neutral, f"generation.{key}",
                   f"must be {neutral} with generation.backend=vllm (vLLM's log-probs would include the truncation "
                   "the trainer does not score); use generation.backend=hf for truncated sampling", value)
        c.need(not m.lora.per_role, "model.lora.per_role", "is not supported with generation.backend=vllm yet",
               m.lora.per_role)

    c.need(s.workers >= 1, "sandbox.workers", "must be >= 1", s.workers)
    c.need(s.timeout_s > 0, "sandbox.timeout_s", "must be > 0", s.timeout_s)
    c.need(s.memory_mb >= 64, "sandbox.memory_mb", "must be >= 64", s.memory_mb)
    c.choice("sandbox.backend", s.backend, ["local", "ray"])
    c.need(s.backend == "ray" or not s.ray_address, "sandbox.ray_address",
           "is only used with sandbox.backend=ray", s.ray_address)

    c.need(bool(t.types), "tasks.types", "must enable at least one task type", t.types)
    for name in t.types:
        c.choice("tasks.types", name, TASK_TYPES)
    c.need(len(set(t.types)) == len(t.types), "tasks.types", "must not repeat a type", t.types)
    c.need(t.references >= 0, "tasks.references", "must be >= 0", t.references)
    c.need(t.induction_inputs >= 2, "tasks.induction_inputs", "must be >= 2", t.induction_inputs)
    c.need(1 <= t.induction_shown < t.induction_inputs, "tasks.induction_shown",
           f"must be in [1, tasks.induction_inputs={t.induction_inputs}) so some pairs stay hidden",
           t.induction_shown)  # fmt: skip
    c.choice("tasks.prompt_style", t.prompt_style, ["paper", "compact"])
    c.need(t.max_program_chars >= 1, "tasks.max_program_chars", "must be >= 1", t.max_program_chars)
    c.need(t.max_output_chars >= 1, "tasks.max_output_chars", "must be >= 1", t.max_output_chars)

    c.need(b.seed_count >= 1, "buffer.seed_count", "must be >= 1", b.seed_count)
    c.need(b.max_tasks >= 1, "buffer.max_tasks", "must be >= 1", b.max_tasks)
    c.choice("buffer.sampling", b.sampling, ["recent", "uniform"])
    c.need(not b.seed_file or Path(b.seed_file).is_file(), "buffer.seed_file", "file not found", b.seed_file)

    c.need(rl.batch_per_type_role >= 1, "rl.batch_per_type_role", "must be >= 1", rl.batch_per_type_role)
    c.need(rl.learnability_rollouts >= 2, "rl.learnability_rollouts",
           "must be >= 2 (with one rollout the solve rate is 0 or 1 and learnability is always 0)",
           rl.learnability_rollouts)  # fmt: skip
    for name in ("proposer_format_error", "proposer_invalid", "extreme_solve_rate_reward", "solver_correct",
                 "solver_wrong", "solver_format_error"):  # fmt: skip
        value = getattr(rl.rewards, name)
        c.need(math.isfinite(value), f"rl.rewards.{name}", "must be a finite number", value)
    c.choice("rl.advantage_std", rl.advantage_std, ["unbiased", "population"])
    c.need(rl.advantage_eps >= 0, "rl.advantage_eps", "must be >= 0", rl.advantage_eps)
    c.need(rl.advantage_clip is None or rl.advantage_clip > 0, "rl.advantage_clip", "must be > 0 or null",
           rl.advantage_clip)  # fmt: skip
    c.need(0 < rl.clip_eps < 1, "rl.clip_eps", "must be in (0, 1)", rl.clip_eps)
    c.need(rl.clip_eps_high is None or rl.clip_eps_high > 0, "rl.clip_eps_high", "must be > 0 or null",
           rl.clip_eps_high)  # fmt: skip
    c.need(rl.dual_clip is None or rl.dual_clip > 1, "rl.dual_clip", "must be > 1 or null", rl.dual_clip)
    c.need(rl.kl_coef >= 0, "rl.kl_coef", "must be >= 0", rl.kl_coef)
    c.need(rl.entropy_coef >= 0, "rl.entropy_coef", "must be >= 0", rl.entropy_coef)
    c.choice("rl.loss_aggregation", rl.loss_aggregation, LOSS_AGGREGATIONS)
    c.need(rl.ppo_epochs >= 1, "rl.ppo_epochs", "must be >= 1", rl.ppo_epochs)
    c.need(rl.micro_batch_size >= 1, "rl.micro_batch_size", "must be >= 1", rl.micro_batch_size)
    c.need(rl.lr > 0, "rl.lr", "must be > 0", rl.lr)
    c.choice("rl.lr_schedule", rl.lr_schedule, ["constant", "linear", "cosine"])
    c.need(rl.warmup_steps >= 0, "rl.warmup_steps", "must be >= 0", rl.warmup_steps)
    c.need(rl.weight_decay >= 0, "rl.weight_decay", "must be >= 0", rl.weight_decay)
    c.need(0 <= rl.adam_beta1 < 1, "rl.adam_beta1", "must be in [0, 1)", rl.adam_beta1)
    c.need(0 <= rl.adam_beta2 < 1, "rl.adam_beta2", "must be in [0, 1)", rl.adam_beta2)
    c.need(rl.grad_clip >= 0, "rl.grad_clip", "must be >= 0 (0 = off)", rl.grad_clip)

    c.need(tr.max_steps >= 1, "trainer.max_steps", "must be >= 1", tr.max_steps)
    c.need(bool(tr.output_dir.strip()), "trainer.output_dir", "must not be empty", tr.output_dir)
    c.need(tr.save_every >= 0, "trainer.save_every", "must be >= 0 (0 = only at the end)", tr.save_every)
    c.need(tr.keep_checkpoints >= 1, "trainer.keep_checkpoints", "must be >= 1", tr.keep_checkpoints)
    c.need(tr.log_every >= 1, "trainer.log_every", "must be >= 1", tr.log_every)
    for name in tr.report_to:
        c.choice("trainer.report_to", name, ["none", "tensorboard", "wandb"])
    c.need("none" not in tr.report_to or len(tr.report_to) == 1, "trainer.report_to",
           "'none' cannot be combined with other reporters", tr.report_to)  # fmt: skip
    c.need(bool(tr.resume.strip()), "trainer.resume", "must be auto, never or a checkpoint path", tr.resume)

    c.need(ev.every >= 0, "eval.every", "must be >= 0 (0 = off)", ev.every)
    c.need(ev.limit >= 0, "eval.limit", "must be >= 0 (0 = all)", ev.limit)
    c.need(ev.max_new_tokens >= 1, "eval.max_new_tokens", "must be >= 1", ev.max_new_tokens)
    c.need(ev.every == 0 or bool(ev.benchmarks), "eval.benchmarks", "must name a benchmark when eval.every > 0",
           ev.benchmarks)  # fmt: skip

    if c.problems:
        raise ConfigError(
            "invalid config:\n  " + "\n  ".join(c.problems) if len(c.problems) > 1 else c.problems[0]
        )
