"""Config loading: shipped YAML files, overrides, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from azr.config import Config, ConfigError, load_config, save_config
from azr.rl import RewardScheme

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER_MODELS = {
    "qwen2.5-3b.yaml": "Qwen/Qwen2.5-3B",
    "qwen2.5-coder-3b.yaml": "Qwen/Qwen2.5-Coder-3B",
    "qwen2.5-7b.yaml": "Qwen/Qwen2.5-7B",
    "qwen2.5-coder-7b.yaml": "Qwen/Qwen2.5-Coder-7B",
    "qwen2.5-14b.yaml": "Qwen/Qwen2.5-14B",
    "qwen2.5-coder-14b.yaml": "Qwen/Qwen2.5-Coder-14B",
}


def test_every_shipped_yaml_loads():
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert {"tiny.yaml", "paper.yaml", *PAPER_MODELS} <= set(names)
    for name in names:
        assert isinstance(load_config(CONFIGS / name), Config), name


def test_defaults_validate():
    cfg = load_config()
    assert cfg.model.name_or_path == "embedded:tiny"
    assert isinstance(cfg.rl.rewards, RewardScheme) and cfg.rl.rewards.extreme_solve_rate_reward == 0.0


def test_tiny_is_small():
    cfg = load_config(CONFIGS / "tiny.yaml")
    assert cfg.model.name_or_path == "embedded:tiny"
    assert cfg.generation.backend == "hf"
    assert (cfg.rl.batch_per_type_role, cfg.rl.learnability_rollouts, cfg.tasks.references) == (4, 4, 2)
    assert cfg.rl.lr == pytest.approx(1e-4)
    assert cfg.trainer.max_steps <= 10
    assert cfg.generation.max_new_tokens_propose <= 512


@pytest.mark.parametrize(("name", "model"), sorted(PAPER_MODELS.items()))
def test_paper_settings(name, model):
    cfg = load_config(CONFIGS / name)
    assert cfg.model.name_or_path == model
    g, rl, t = cfg.generation, cfg.rl, cfg.tasks
    assert (rl.batch_per_type_role, rl.learnability_rollouts, t.references) == (64, 8, 6)
    assert (t.induction_inputs, t.induction_shown) == (10, 5)
    assert (g.max_prompt_tokens, g.max_new_tokens_propose, g.max_new_tokens_solve) == (6144, 8096, 8096)
    assert (g.temperature, g.top_p, g.top_k) == (1.0, 1.0, 0)
    assert rl.lr == pytest.approx(1e-6) and rl.lr_schedule == "constant" and rl.warmup_steps == 0
    assert (rl.entropy_coef, rl.kl_coef, rl.grad_clip, rl.clip_eps) == (0.001, 0.0, 1.0, 0.2)
    assert cfg.buffer.max_tasks == 16384
    assert cfg.trainer.max_steps == 500
    assert g.vllm.tensor_parallel_size == (4 if "14b" in name else 2)


def test_sampling_params_per_role():
    cfg = load_config(CONFIGS / "tiny.yaml")
    propose = cfg.generation.sampling("propose", n=4, seed=1)
    assert (propose.max_new_tokens, propose.n, propose.seed, propose.stop) == (256, 4, 1, ("</answer>",))
    solve = cfg.generation.sampling("solve")
    assert (solve.max_new_tokens, solve.temperature, solve.top_p, solve.top_k) == (128, 1.0, 1.0, 0)
    with pytest.raises(ValueError, match="role must be"):
        cfg.generation.sampling("judge")


def test_overrides_win_over_the_file():
    cfg = load_config(
        CONFIGS / "tiny.yaml",
        ["trainer.max_steps=20", "rl.rewards.extreme_solve_rate_reward=-0.5", "tasks.types=[deduction]",
         "rl.clip_eps_high=0.28", "generation.stop=['</answer>','<|im_end|>']"],
    )  # fmt: skip
    assert cfg.trainer.max_steps == 20
    assert cfg.rl.rewards.extreme_solve_rate_reward == -0.5
    assert cfg.rl.rewards.proposer("valid", 0, 4) == -0.5
    assert cfg.tasks.types == ["deduction"]
    assert cfg.rl.clip_eps_high == pytest.approx(0.28)
    assert cfg.generation.stop == ["</answer>", "<|im_end|>"]
    assert cfg.rl.batch_per_type_role == 4  # untouched file value


def test_bad_value_names_the_field():
    with pytest.raises(ConfigError, match=r"^rl\.clip_eps: must be in \(0, 1\), got 3"):
        load_config(CONFIGS / "tiny.yaml", ["rl.clip_eps=3"])
    with pytest.raises(ConfigError, match=r"generation\.temperature: must be > 0"):
        load_config(None, ["generation.temperature=0"])
    with pytest.raises(ConfigError, match=r"tasks\.types: .*got 'abductoin' \(did you mean 'abduction'\?\)"):
        load_config(None, ["tasks.types=[deduction,abductoin]"])
    with pytest.raises(
        ConfigError, match=r"tasks\.induction_shown: must be in \[1, tasks\.induction_inputs=4\)"
    ):
        load_config(None, ["tasks.induction_inputs=4", "tasks.induction_shown=4"])


def test_every_problem_is_listed():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["rl.lr=-1", "trainer.report_to=[none,wandb]", "rl.loss_aggregation=mean"])
    message = str(info.value)
    assert "rl.lr: must be > 0, got -1.0" in message
    assert "trainer.report_to: 'none' cannot be combined" in message
    assert "rl.loss_aggregation: must be one of token-mean" in message


def test_unknown_key_suggests_the_close_match(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"trainer\.max_step: unknown key \(in overrides\); did you mean 'trainer\.max_steps'\?",
    ):
        load_config(None, ["trainer.max_step=3"])
    with pytest.raises(ConfigError, match=r"rl\.max_steps: unknown key.*did you mean 'trainer\.max_steps'"):
        load_config(None, ["rl.max_steps=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl:\n  learnability_rolouts: 4\n")
    with pytest.raises(
        ConfigError,
        match=rf"rl\.learnability_rolouts: unknown key \(in {bad}\); did you mean 'rl\.learnability_rollouts'",
    ):
        load_config(bad)


def test_wrong_type_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^trainer\.max_steps: Value 'many' .* Integer \(in overrides\)"):
        load_config(None, ["trainer.max_steps=many"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl:\n  rewards:\n    solver_wrong: half\n")
    with pytest.raises(ConfigError, match=r"^rl\.rewards\.solver_wrong: .*Float"):
        load_config(bad)


def test_file_and_override_syntax_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rl: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="expected key.sub=value"):
        load_config(None, ["trainer.max_steps"])
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("base: b.yaml\n")
    b.write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(a)


def test_base_files_layer_in_order(tmp_path):
    (tmp_path / "base.yaml").write_text("rl:\n  lr: 0.5\n  micro_batch_size: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nrl:\n  lr: 0.25\n")
    cfg = load_config(child)
    assert (cfg.rl.lr, cfg.rl.micro_batch_size) == (0.25, 3)


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "qwen2.5-coder-7b.yaml", ["rl.advantage_clip=5", "trainer.seed=3"])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg
