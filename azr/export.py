"""`azr export`: a run's checkpoint as one stand-alone Hugging Face model folder.

A LoRA checkpoint holds adapters only; export loads the base named in the checkpoint's config, folds
the adapter into it (per-role runs: the chosen role's adapter) and writes a full model + tokenizer that
``AutoModelForCausalLM.from_pretrained`` loads anywhere (evaluation, serving). A full-model checkpoint
is copied as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import OmegaConf

from azr import checkpoint, lora
from azr.config import ModelConfig, first_line


class ExportError(RuntimeError):
    """The export cannot run; the message names the input that is wrong and what to pass instead."""


def find_checkpoint(source: Path) -> Path:
    """A checkpoint directory itself, or the latest complete checkpoint of a run directory."""
    source = Path(source)
    if not source.is_dir():
        raise ExportError(f"{source}: no such run or checkpoint directory")
    if (source / checkpoint.STATE).is_file():
        return source
    found = checkpoint.latest(source)
    if found is None:
        raise ExportError(f"{source}: no checkpoint found (expected {checkpoint.checkpoints_dir(source)}/step-*/); "
                          "pass a run directory that has saved a checkpoint, or a checkpoint directory")
    return found


def export(source: Path, out: Path, role: str | None = None) -> Path:
    """Write the merged model of ``source``'s checkpoint to ``out`` (new or empty); returns the checkpoint."""
    if role is not None and role not in lora.ROLES:
        raise ExportError(f"--role: must be one of {', '.join(lora.ROLES)}, got {role!r}")
    ckpt = find_checkpoint(source)
    model_dir = ckpt / checkpoint.MODEL
    kind = lora.model_kind(model_dir)
    if kind is None:
        raise ExportError(f"{ckpt}: {checkpoint.MODEL}/ holds neither a model (config.json) nor LoRA adapters "
                          "(adapter_config.json)")
    if role is not None and kind != "lora-per-role":
        raise ExportError(f"--role: {ckpt} has no per-role adapters (model.lora.per_role was off); omit --role")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: already exists and is not an empty directory; choose a new output path")
    tmp = out.parent / f".{out.name}.tmp-export"
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "full":
            shutil.copytree(model_dir, tmp)
        else:
            _merge(ckpt, role, tmp)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ckpt


def _merge(ckpt: Path, role: str | None, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from azr.components import RunError, resolve_model

    model_cfg = _model_config(ckpt)
    dtype = "float32" if model_cfg.dtype == "auto" else model_cfg.dtype
    try:
        base_path = resolve_model(model_cfg.name_or_path)
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=getattr(torch, dtype),
                                                    trust_remote_code=model_cfg.trust_remote_code)
    except (RunError, OSError, ValueError) as exc:
        raise ExportError(f"{ckpt / 'config.yaml'}: cannot load the base model "
                          f"{model_cfg.name_or_path!r}: {first_line(exc)}") from None
    tokenizer = AutoTokenizer.from_pretrained(ckpt / checkpoint.MODEL, trust_remote_code=model_cfg.trust_remote_code)
    model = lora.load(base, ckpt / checkpoint.MODEL)
    merged = lora.merged(model, role)
    merged.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def _model_config(ckpt: Path) -> ModelConfig:
    """The checkpoint's model section (the base model and its dtype), without validating the whole config:
    an export must not fail because, say, the run's seed file has moved since."""
    path = ckpt / "config.yaml"
    try:
        section = OmegaConf.load(path).get("model", {})
        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), section)
        model_cfg = OmegaConf.to_object(merged)
    except Exception as exc:  # noqa: BLE001 - YAML or schema errors: name the file
        raise ExportError(f"{path}: unreadable model section ({first_line(exc)})") from None
    assert isinstance(model_cfg, ModelConfig)
    return model_cfg
