"""LoRA through peft: only adapters train, per-role adapters get only their role's gradient and tokens,
checkpoints hold adapters and resume exactly, `azr export --merge` gives a loadable full model."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from azr import checkpoint, lora
from azr.cli import app
from azr.components import Components, RunError, build_components, lr_lambda
from azr.config import ConfigError, LoraConfig, load_config
from azr.generation import HFGenerator, SamplingParams, sequence_logprobs
from azr.selfplay import Sample, ppo_update, selfplay_step, train

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["def f(a):", "User: What is 12 + 30? Assistant: <think>", "The quick brown fox", "def f(xs):"]
ROLES = ["propose", "solve", "solve", "propose"]
# A step in seconds on 2 cores: one task type, short completions. The entropy bonus gives every sample a
# gradient even when a group's rewards are all equal; the KL term runs the adapters-off reference.
SMALL = ["trainer.report_to=[none]", "tasks.types=[deduction]", "rl.batch_per_type_role=2",
         "rl.learnability_rollouts=2", "generation.max_new_tokens_propose=24", "generation.max_new_tokens_solve=16",
         "rl.entropy_coef=0.01", "rl.kl_coef=0.01", "model.lora.r=4", "sandbox.workers=1", "trainer.save_every=1"]


def run_config(config_file: str, model_dir: Path, out: Path, steps: int, *extra: str):
    return load_config(ROOT / "configs" / config_file, [f"model.name_or_path={model_dir}", f"trainer.output_dir={out}",
                                                        f"trainer.max_steps={steps}", *SMALL, *extra])


def lora_tensors(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def adapter_of(name: str) -> str:
    return re.search(r"\.lora_[AB]\.([^.]+)\.", name).group(1)


def optimizer_moments(optimizer) -> dict[tuple[str, int], torch.Tensor]:
    """Adam's moments keyed by the parameter's position in the optimiser and the parameter's shape."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    return {(f"{key}{tuple(p.shape)}", i): optimizer.state[p][key].detach().clone()
            for i, p in enumerate(params) if p in optimizer.state for key in ("exp_avg", "exp_avg_sq")}


def logits(model, tokenizer, text: str = "def f(a):\n    return a") -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


def peft_from_checkpoint(ckpt: Path, base_dir: Path):
    from transformers import AutoModelForCausalLM

    return lora.load(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), ckpt / "model").eval()


# ---- config ------------------------------------------------------------------------------------------


def test_per_role_needs_lora_enabled():
    with pytest.raises(ConfigError, match=r"model\.lora\.per_role: needs model\.lora\.enabled=true"):
        load_config(overrides=["model.lora.per_role=true"])
    with pytest.raises(ConfigError, match=r"model\.lora\.target_modules"):
        load_config(overrides=["model.lora.enabled=true", "model.lora.target_modules=[]"])
    cfg = load_config(ROOT / "configs" / "tiny-lora.yaml")
    assert cfg.model.lora.enabled and cfg.model.lora.per_role and cfg.model.name_or_path == "embedded:tiny"


# ---- per-role adapters on a random tiny Qwen2 ----------------------------------------------------------


@pytest.fixture
def per_role(tiny_model_dir: Path):
    """A per-role PeftModel whose two adapters are randomised apart (fresh LoRA is the identity)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    model = lora.wrap(base, LoraConfig(enabled=True, per_role=True, r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.3)
    return model, tokenizer


def test_generation_routes_each_prompt_to_its_roles_adapter(per_role):
    model, tokenizer = per_role
    gen = HFGenerator(model, tokenizer, batch_size=4)  # one batch mixes both roles
    params = SamplingParams(max_new_tokens=10, temperature=0)
    mixed = gen.generate(PROMPTS, params, roles=ROLES)
    alone = {}
    for role in lora.ROLES:
        lora.use_role(model, role)
        alone[role] = gen.generate(PROMPTS, params)  # no routing: the active adapter serves every prompt
    assert any(a[0].completion_ids != b[0].completion_ids for a, b in zip(alone["propose"], alone["solve"])), \
        "the two adapters must generate differently, or this test proves nothing"
    for i, role in enumerate(ROLES):
        assert mixed[i][0].completion_ids == alone[role][i][0].completion_ids, (i, role)
        lora.use_role(model, role)  # the trainer's log-prob (the model body, unwrapped) uses the active adapter
        lp, _, _ = sequence_logprobs(model, [mixed[i][0].prompt_ids], [mixed[i][0].completion_ids], gen.pad_token_id)
        torch.testing.assert_close(torch.tensor(mixed[i][0].logprobs), lp[0], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown role"):
        gen.generate(PROMPTS[:1], params, roles=["judge"])
    with pytest.raises(ValueError, match="1 prompts but 2 roles"):
        gen.generate(PROMPTS[:1], params, roles=["solve", "solve"])


def test_each_roles_gradient_reaches_only_its_adapter(per_role):
    model, tokenizer = per_role
    gen = HFGenerator(model, tokenizer, batch_size=4)
    outs = gen.generate(PROMPTS, SamplingParams(max_new_tokens=8, temperature=1.0, seed=0), roles=ROLES)
    model.train()
    for role in lora.ROLES:
        rows = [out[0] for out, r in zip(outs, ROLES) if r == role]
        lora.use_role(model, role)
        logp, mask, _ = sequence_logprobs(model, [g.prompt_ids for g in rows], [g.completion_ids for g in rows],
                                          gen.pad_token_id)
        (-(logp * mask).sum()).backward()
        for name, p in model.named_parameters():
            if "lora_" not in name:
                assert p.grad is None, name  # the base is frozen
            elif adapter_of(name) == role:
                assert p.grad is not None, name
            else:
                assert p.grad is None, name  # the other role's adapter never saw these tokens
        assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n and f".{role}." in n)
        model.zero_grad(set_to_none=True)


def test_ppo_update_trains_only_the_roles_present(per_role, tmp_path: Path):
    model, tokenizer = per_role
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["rl.micro_batch_size=3", "rl.lr=1e-3"])
    gen = HFGenerator(model, tokenizer, batch_size=4)
    optimizer = torch.optim.AdamW(lora.trainable_parameters(model), lr=cfg.rl.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    c = Components(cfg, tmp_path, model, tokenizer, gen, sandbox=None, buffer=None, optimizer=optimizer,
                   scheduler=scheduler, rng=random.Random(0), logger=None)
    outs = gen.generate(PROMPTS, SamplingParams(max_new_tokens=8, temperature=1.0, seed=0), roles=ROLES)
    samples = [Sample(r, "deduction", o[0].prompt_ids, o[0].completion_ids, o[0].logprobs, 0.0)
               for o, r in zip(outs, ROLES)]
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    for trained in (["propose"], ["solve"], ["propose", "solve"]):
        before = lora_tensors(model)
        chosen = [s for s in samples if s.role in trained]
        ppo_update(c, chosen, torch.linspace(-1.0, 1.0, len(chosen)))
        after = lora_tensors(model)
        for role in lora.ROLES:
            changed = any(not torch.equal(before[n], after[n]) for n in before if adapter_of(n) == role)
            assert changed == (role in trained), (trained, role)
        assert model.active_adapter == lora.DEFAULT_ROLE
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if "lora_" not in n)


# ---- end to end: the trainer, resume, export -------------------------------------------------------------


@pytest.mark.slow
def test_lora_run_trains_adapters_only_resumes_and_exports(e2e_model_dir: Path, tmp_path: Path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"
    c = build_components(run_config("tiny.yaml", e2e_model_dir, run, 2, "model.lora.enabled=true"))
    printed = capsys.readouterr().out
    n_lora = sum(p.numel() for n, p in c.model.named_parameters() if "lora_" in n)
    total = sum(p.numel() for p in c.model.parameters())
    assert f"trainable params: {n_lora:,} / {total:,}" in printed
    assert (n_lora, total) == c.model.get_nb_trainable_parameters()  # peft's own count agrees
    assert {id(p) for g in c.optimizer.param_groups for p in g["params"]} == \
        {id(p) for n, p in c.model.named_parameters() if "lora_" in n}
    base = {n: p.detach().clone() for n, p in c.model.named_parameters() if "lora_" not in n}
    start = lora_tensors(c.model)
    try:
        for step in (1, 2):
            selfplay_step(c, step)
        ckpt = checkpoint.save(c, 2)
        assert all(torch.equal(p, base[n]) for n, p in c.model.named_parameters() if "lora_" not in n)
        trained = lora_tensors(c.model)
        assert any(not torch.equal(start[n], trained[n]) for n in start)
        opt_state = optimizer_moments(c.optimizer)
    finally:
        c.close()
    saved = load_file(ckpt / "model" / "adapter_model.safetensors")
    assert saved and all("lora_" in k for k in saved), "the checkpoint holds adapters, not the base"
    assert (ckpt / "model" / "adapter_config.json").is_file() and (ckpt / "model" / "tokenizer.json").is_file()
    assert not (ckpt / "model" / "model.safetensors").exists()

    # resume: the base from model.name_or_path, the checkpoint's adapters, trainable, optimiser lined up
    cfg4 = run_config("tiny.yaml", e2e_model_dir, run, 4, "model.lora.enabled=true")
    c = build_components(cfg4)
    try:
        assert c.start_step == 2
        assert all(torch.equal(t, trained[n]) for n, t in lora_tensors(c.model).items())
        assert all(p.requires_grad == ("lora_" in n) for n, p in c.model.named_parameters())
        resumed = optimizer_moments(c.optimizer)  # each moment sits on the parameter it was computed for
        assert resumed.keys() == opt_state.keys() and len(resumed) == 2 * len(trained)
        assert all(torch.equal(resumed[k], opt_state[k]) for k in resumed)
    finally:
        c.close()
    with pytest.raises(RunError, match=r"model\.lora: checkpoint .* holds one LoRA adapter"):
        build_components(run_config("tiny.yaml", e2e_model_dir, run, 4))  # LoRA off on a LoRA run
    final = train(cfg4)
    assert final.name == "step-000004" and (final / "model" / "adapter_config.json").is_file()

    # export --merge: a plain model whose logits are the adapted model's
    runner, out = CliRunner(), tmp_path / "merged"
    res = runner.invoke(app, ["export", str(run), "--merge", str(out)])
    assert res.exit_code == 0, res.output
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    adapted = peft_from_checkpoint(final, e2e_model_dir)
    torch.testing.assert_close(logits(merged, tokenizer), logits(adapted, tokenizer), atol=1e-4, rtol=1e-4)
    plain = AutoModelForCausalLM.from_pretrained(e2e_model_dir, dtype=torch.float32).eval()
    assert not torch.allclose(logits(merged, tokenizer), logits(plain, tokenizer), atol=1e-4), "adapters merged"

    for args, message in [
        (["export", str(run), "--merge", str(out)], "not an empty directory"),
        (["export", str(tmp_path / "nope"), "--merge", str(tmp_path / "o1")], "no such run or checkpoint"),
        (["export", str(tmp_path), "--merge", str(tmp_path / "o2")], "no checkpoint found"),
        (["export", str(run), "--merge", str(tmp_path / "o3"), "--role", "solve"], "no per-role adapters"),
        (["export", str(run), "--merge", str(tmp_path / "o4"), "--role", "judge"], "must be one of propose, solve"),
    ]:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and message in res.output, (args, res.output)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


@pytest.mark.slow
def test_per_role_adapters_diverge_resume_and_export(e2e_model_dir: Path, tmp_path: Path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"
    first = train(run_config("tiny-lora.yaml", e2e_model_dir, run, 1))
    assert "in per-role adapters: propose" in capsys.readouterr().out

    def adapters(ckpt: Path) -> dict[str, dict[str, torch.Tensor]]:
        return {role: load_file(ckpt / "model" / role / "adapter_model.safetensors") for role in lora.ROLES}

    one = adapters(first)
    assert one["propose"].keys() == one["solve"].keys()
    b_keys = [k for k in one["solve"] if "lora_B" in k]
    for role in lora.ROLES:  # fresh lora_B is zero: each role's own samples moved it
        assert any(one[role][k].abs().sum() > 0 for k in b_keys), role
    assert any(not torch.equal(one["propose"][k], one["solve"][k]) for k in b_keys), "the adapters diverged"

    second = train(run_config("tiny-lora.yaml", e2e_model_dir, run, 2))  # resumes per-role adapters
    assert second.name == "step-000002"
    two = adapters(second)
    for role in lora.ROLES:
        assert any(not torch.equal(one[role][k], two[role][k]) for k in b_keys), role

    runner = CliRunner()
    for role in lora.ROLES:
        res = runner.invoke(app, ["export", str(second), "--merge", str(tmp_path / role), "--role", role])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", str(run), "--merge", str(tmp_path / "default")])
    assert res.exit_code == 0, res.output
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "solve")
    out = {name: logits(AutoModelForCausalLM.from_pretrained(tmp_path / name, dtype=torch.float32).eval(), tokenizer)
           for name in ("propose", "solve", "default")}
    assert not torch.allclose(out["propose"], out["solve"], atol=1e-4)
    assert torch.equal(out["default"], out["solve"])
    adapted = peft_from_checkpoint(second, e2e_model_dir)
    lora.use_role(adapted, "propose")
    torch.testing.assert_close(out["propose"], logits(adapted, tokenizer), atol=1e-4, rtol=1e-4)
