"""FSDP2 (``torch.distributed.fsdp.fully_shard``): parameters, gradients and optimizer states sharded.

Selected by an accelerate config with ``distributed_type: FSDP`` and ``fsdp_version: 2``
(``configs/accelerate/fsdp.yaml``): ``accelerate launch`` exports ``ACCELERATE_USE_FSDP=true`` and
``FSDP_*`` variables, which :func:`settings_from_env` reads. azr shards the model itself rather than
through ``Accelerator.prepare``, because the step is not a plain ``loss.backward()`` loop: generation,
scoring and the update each need their own handling (see :mod:`azr.distributed`):

* every FSDP forward all-gathers and every backward reduce-scatters, so every rank must run the same
  number of them: generation pads each rank to the same number of ``generate`` calls and steps with
  ``synced_gpus`` (:class:`azr.generation.HFGenerator`), the update pads with zero-weight micro-batches;
* each rank's loss is a partial sum of the full-batch loss (one shared denominator), so gradients are
  reduced by SUM, not FSDP's default mean (:func:`shard`);
* checkpoints gather the full weights and optimizer state to rank 0 (:func:`full_state`), so a
  checkpoint is the same HF folder as a single-process run's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


class ParallelismError(ValueError):
    """The launcher asked for a parallelism azr cannot run; the message says what to use instead."""


@dataclass(frozen=True)
class FsdpSettings:
    """What the accelerate FSDP config asks for. ``wrap_classes`` empty: the model's ``_no_split_modules``."""

    wrap_classes: tuple[str, ...] = ()
    reshard_after_forward: bool = True


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    return env.get(name, str(default)).strip().lower() in ("1", "true", "yes")


def settings_from_env(env: Mapping[str, str] | None = None) -> FsdpSettings | None:
    """FSDP settings when the launcher selected FSDP, else ``None``; unsupported choices fail here."""
    env = os.environ if env is None else env
    if _flag(env, "ACCELERATE_USE_DEEPSPEED"):
        raise ParallelismError("accelerate: DeepSpeed is not supported by azr; shard the model with FSDP2 instead "
                               "(accelerate launch --config_file configs/accelerate/fsdp.yaml ...) or run data "
                               "parallel (configs/accelerate/ddp.yaml)")
    if not _flag(env, "ACCELERATE_USE_FSDP"):
        return None
    where = "accelerate FSDP config"
    if env.get("FSDP_VERSION", "1") != "2":
        raise ParallelismError(f"{where}: fsdp_version {env.get('FSDP_VERSION', '1')} is not supported; set "
                               "fsdp_version: 2 (see configs/accelerate/fsdp.yaml)")
    if _flag(env, "FSDP_OFFLOAD_PARAMS"):
        raise ParallelismError(f"{where}: fsdp_offload_params is not supported yet; set it to false")
    if _flag(env, "FSDP_ACTIVATION_CHECKPOINTING"):
        raise ParallelismError(f"{where}: fsdp_activation_checkpointing: set it to false and use azr's "
                               "model.gradient_checkpointing=true instead")
    policy = env.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
    if policy not in ("TRANSFORMER_BASED_WRAP", "None", ""):
        raise ParallelismError(f"{where}: fsdp_auto_wrap_policy {policy} is not supported; use "
                               "TRANSFORMER_BASED_WRAP (each decoder layer is one FSDP unit)")
    classes = env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "")
    reshard = env.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().lower()
    return FsdpSettings(wrap_classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
                        reshard_after_forward=reshard not in ("false", "0", "no", "shard_grad_op"))


def shard(model: torch.nn.Module, settings: FsdpSettings, device: torch.device, world: int) -> torch.nn.Module:
    """``fully_shard`` each decoder layer, then the root (embeddings, final norm, LM head); in place.

    The model may sit on the CPU: each unit's parameters move to ``device`` as they are sharded, so a
    GPU never holds more than one full layer. Gradients are reduced by plain SUM (divide factor 1,
    sum-only collectives, which gloo supports too): azr's per-rank losses already add up to the loss."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    names = set(settings.wrap_classes or getattr(model, "_no_split_modules", None) or ())
    units = [m for m in model.modules() if type(m).__name__ in names and m is not model]
    if not units:
        raise ParallelismError(f"accelerate FSDP config: no module of {sorted(names) or 'no class'} in "
                               f"{type(model).__name__}; set fsdp_transformer_layer_cls_to_wrap to its decoder "
                               "layer class")
    mesh = init_device_mesh(device.type, (world,))
    for unit in units:
        fully_shard(unit, mesh=mesh, reshard_after_forward=settings.reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=settings.reshard_after_forward)
    for unit in [*units, model]:
        unit.set_gradient_divide_factor(1.0)  # type: ignore[operator]
        unit.set_force_sum_reduction_for_comms(True)  # type: ignore[operator]
    return model


def is_sharded(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full weights and optimizer state on rank 0's CPU (empty dicts elsewhere). Every rank must call it.

    The optimizer state is keyed by parameter name (torch's full state-dict format)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (get_model_state_dict(model, options=options),
            get_optimizer_state_dict(model, optimizer, options=options))


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Restore a full (name-keyed, or index-keyed from a data-parallel run) optimizer state into shards.
    Rank 0's ``state`` is the one used (it is broadcast); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    full = by_name(state, trainable_names(model)) if torch.distributed.get_rank() == 0 else {}
    set_optimizer_state_dict(model, optimizer, full,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def trainable_names(model: torch.nn.Module) -> list[str]:
    """Names of the optimised parameters, in the optimiser's order."""
    from azr.lora import trainable_named_parameters

    return [n for n, _ in trainable_named_parameters(model)]


def by_name(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An optimizer state dict keyed by parameter name; an index-keyed one (``Optimizer.state_dict``)
    is converted with ``names`` (the parameters in optimiser order)."""
    return _rekey(state, lambda k: names[k] if isinstance(k, int) else k)


def by_index(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An optimizer state dict keyed by index (``Optimizer.load_state_dict``'s format); a name-keyed one
    (an FSDP checkpoint's) is converted with ``names`` (the parameters in optimiser order)."""
    index = {n: i for i, n in enumerate(names)}
    return _rekey(state, lambda k: index[k] if isinstance(k, str) else k)


def _rekey(state: dict[str, Any], key: Any) -> dict[str, Any]:
    try:
        return {**state, "state": {key(k): v for k, v in state["state"].items()},
                "param_groups": [{**g, "params": [key(k) for k in g["params"]]} for g in state["param_groups"]]}
    except (KeyError, IndexError) as exc:
        raise ParallelismError(f"optimizer.pt: its parameters do not match the model's ({exc}); resume with "
                               "the run's own model") from None
