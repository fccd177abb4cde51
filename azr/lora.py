"""LoRA adapters through peft: wrap the policy, route each role to its adapter, load, merge.

With ``model.lora.enabled`` the base model is frozen and only adapter weights train. With
``model.lora.per_role`` the proposer and the solver get their own adapter on the one base, named after
the roles ("propose", "solve"): generation routes each prompt to its role's adapter (peft's mixed
adapter batches, so one ``generate`` call serves both roles) and the update runs every micro-batch,
which then holds one role only, with that role's adapter active, so a role's gradient reaches its own
adapter and nothing else. Checkpoints hold the adapters in peft's format (one subfolder per adapter when
there are several); the base is loaded again from ``model.name_or_path``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:
    from azr.config import LoraConfig

ROLES = ("propose", "solve")  # per-role adapters are named after the role they serve
DEFAULT_ROLE = "solve"  # the adapter active outside the step (evaluation, export): the solver
ADAPTER_CONFIG = "adapter_config.json"
ModelKind = Literal["full", "lora", "lora-per-role"]


def is_peft(model: Any) -> bool:
    if "peft" not in sys.modules:  # no peft model can exist yet; skip the import on full-model runs
        return False
    from peft import PeftModel

    return isinstance(model, PeftModel)


def peft_config(cfg: LoraConfig) -> Any:
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")


def wrap(model: Any, cfg: LoraConfig, gradient_checkpointing: bool = False) -> Any:
    """Fresh adapters on a base model (peft freezes the base): one shared adapter, or one per role."""
    from peft import get_peft_model

    if cfg.per_role:
        peft_model = get_peft_model(model, peft_config(cfg), adapter_name=ROLES[0])
        for role in ROLES[1:]:
            peft_model.add_adapter(role, peft_config(cfg))
    else:
        peft_model = get_peft_model(model, peft_config(cfg))
    return _ready(peft_model, gradient_checkpointing)


def load(model: Any, model_dir: Path, gradient_checkpointing: bool = False) -> Any:
    """The adapters saved in a checkpoint's model folder on a base model, trainable (to resume a run)."""
    from peft import PeftModel

    model_dir = Path(model_dir)
    if model_kind(model_dir) == "lora-per-role":
        peft_model = PeftModel.from_pretrained(model, model_dir / ROLES[0], adapter_name=ROLES[0], is_trainable=True)
        for role in ROLES[1:]:
            peft_model.load_adapter(model_dir / role, adapter_name=role, is_trainable=True)
    else:
        peft_model = PeftModel.from_pretrained(model, model_dir, is_trainable=True)
    return _ready(peft_model, gradient_checkpointing)


def _ready(peft_model: Any, gradient_checkpointing: bool) -> Any:
    if gradient_checkpointing:  # checkpointed blocks need an input that requires grad (the base is frozen)
        peft_model.enable_input_require_grads()
    use_role(peft_model, DEFAULT_ROLE)
    return peft_model


def model_kind(model_dir: Path) -> ModelKind | None:
    """What a checkpoint's model folder holds: full weights, one adapter, per-role adapters, or nothing."""
    model_dir = Path(model_dir)
    if (model_dir / ADAPTER_CONFIG).is_file():
        return "lora"
    if all((model_dir / role / ADAPTER_CONFIG).is_file() for role in ROLES):
        return "lora-per-role"
    if (model_dir / "config.json").is_file():
        return "full"
    return None


def expected_kind(cfg: LoraConfig) -> ModelKind:
    if not cfg.enabled:
        return "full"
    return "lora-per-role" if cfg.per_role else "lora"


def role_adapters(model: Any) -> tuple[str, ...] | None:
    """The per-role adapter names when the model has them (else None: no routing)."""
    names = set(getattr(model, "peft_config", None) or ()) if is_peft(model) else set()
    return ROLES if names.issuperset(ROLES) else None


def use_role(model: Any, role: str) -> None:
    """Make ``role``'s adapter the active (and the only trainable) one; a no-op without per-role adapters."""
    if role_adapters(model) is None:
        return
    if role not in ROLES:
        raise ValueError(f"lora.use_role: role must be one of {', '.join(ROLES)}, got {role!r}")
    if model.active_adapter != role:
        model.set_adapter(role)


def adapter_names(model: Any, roles: list[str]) -> list[str] | None:
    """Per-row adapter names for peft's mixed adapter batches, or None when the model has no role adapters."""
    if role_adapters(model) is None:
        return None
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"roles: unknown role(s) {', '.join(map(repr, unknown))}; expected {', '.join(ROLES)}")
    return list(roles)


def trainable_named_parameters(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    """What the optimiser updates: every adapter's weights (all roles, whichever is active), or the whole
    model without LoRA. The order is the module order, so a resumed optimiser state lines up."""
    named = list(model.named_parameters())
    return [(n, p) for n, p in named if "lora_" in n] if is_peft(model) else named


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    return [p for _, p in trainable_named_parameters(model)]


def summary(model: Any) -> str:
    """The line printed at the start of a LoRA run, e.g. ``trainable params: 123,456 / 4,567,890 (2.70%)``."""
    trainable = trainable_parameters(model)
    n_train = sum(p.numel() for p in trainable)
    total = sum(p.numel() for p in model.parameters())
    line = f"trainable params: {n_train:,} / {total:,} ({100 * n_train / max(total, 1):.2f}%)"
    if role_adapters(model):
        per = {role: sum(p.numel() for name, p in model.named_parameters() if "lora_" in name and f".{role}." in name)
               for role in ROLES}
        line += " in per-role adapters: " + ", ".join(f"{role} {n:,}" for role, n in per.items())
    return line


@contextlib.contextmanager
def adapters_off(model: Any) -> Iterator[None]:
    """The base model without its adapters, in eval mode: LoRA's KL reference, without a second copy of
    the model. A no-op for other models (the reference is then a frozen copy already)."""
    if not is_peft(model):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        with model.disable_adapter():
            yield
    finally:
        model.train(was_training)


def merged(model: Any, role: str | None = None) -> Any:
    """A plain transformers model with one adapter folded into the base weights (per-role: ``role``'s)."""
    roles = role_adapters(model)
    if roles is not None:
        role = role or DEFAULT_ROLE
        if role not in roles:
            raise ValueError(f"role must be one of {', '.join(roles)}, got {role!r}")
        model.set_adapter(role)
        return model.merge_and_unload(adapter_names=[role])
    if role is not None:
        raise ValueError("role: this model has one shared adapter, not per-role adapters; omit the role")
    return model.merge_and_unload()
