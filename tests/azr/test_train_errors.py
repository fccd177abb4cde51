"""Bad input to `azr train`: one clear error, a non-zero exit, and existing run data untouched."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def azr_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "azr.cli", "train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def small_run_args(model_dir: Path, out: Path, steps: int = 1) -> list[str]:
    return [str(ROOT / "configs" / "tiny.yaml"), f"model.name_or_path={model_dir}", f"trainer.output_dir={out}",
            f"trainer.max_steps={steps}", "trainer.save_every=1", "rl.batch_per_type_role=2",
            "rl.learnability_rollouts=2", "generation.max_new_tokens_propose=16",
            "generation.max_new_tokens_solve=16"]


@pytest.fixture(scope="module")
def existing_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    res = azr_train(*small_run_args(tiny_model_dir, out), cwd=out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "checkpoints" / "step-000001" / "model" / "config.json").is_file()
    return out


def one_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    return errors[0]


def test_malformed_config_names_the_field(existing_run: Path, tmp_path: Path):
    before = tree_digest(existing_run)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl:\n  clip_eps: 3\n")
    msg = one_error(azr_train(str(bad), f"trainer.output_dir={existing_run}", cwd=tmp_path))
    assert "rl.clip_eps" in msg
    msg = one_error(azr_train(str(ROOT / "configs" / "tiny.yaml"), "trainer.max_step=3", cwd=tmp_path))
    assert "trainer.max_steps" in msg  # the suggestion
    bad.write_text("rl: [unclosed\n")
    assert "bad.yaml" in one_error(azr_train(str(bad), cwd=tmp_path))
    assert tree_digest(existing_run) == before


def test_missing_model_path(tmp_path: Path):
    out = tmp_path / "out"
    msg = one_error(azr_train(*small_run_args(tmp_path / "no-such-model", out), cwd=tmp_path))
    assert "model.name_or_path" in msg and "no-such-model" in msg


def test_unwritable_output_dir(tiny_model_dir: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    msg = one_error(azr_train(*small_run_args(tiny_model_dir, blocker / "run"), cwd=tmp_path))
    assert "trainer.output_dir" in msg


def test_corrupt_checkpoint_is_refused_and_left_alone(existing_run: Path, tmp_path: Path):
    ckpt = existing_run / "checkpoints" / "step-000001"
    (ckpt / "optimizer.pt").write_bytes(b"garbage")
    before = tree_digest(existing_run)
    msg = one_error(azr_train("--resume", str(existing_run), "trainer.max_steps=2", cwd=tmp_path))
    assert "optimizer.pt" in msg
    assert tree_digest(existing_run) == before


def test_fresh_run_refuses_to_overwrite(existing_run: Path, tiny_model_dir: Path, tmp_path: Path):
    before = tree_digest(existing_run)
    msg = one_error(azr_train(*small_run_args(tiny_model_dir, existing_run), "trainer.resume=never", cwd=tmp_path))
    assert "already holds a run" in msg
    assert tree_digest(existing_run) == before


def test_vllm_backend_that_cannot_start_leaves_the_run_alone(existing_run: Path, tmp_path: Path):
    with socket.socket() as s:  # a port nothing listens on: no server even where vllm is installed
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    before = tree_digest(existing_run)
    msg = one_error(azr_train("--resume", str(existing_run), "trainer.max_steps=2", "generation.backend=vllm",
                              "generation.vllm.mode=server", f"generation.vllm.server_url={url}", cwd=tmp_path))
    assert msg.startswith("error: generation.") and "vllm" in msg.lower()
    assert tree_digest(existing_run) == before
