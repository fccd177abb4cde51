"""Building the embedded model with a tiny budget: a regular HF checkpoint that loads, generates and
records its build; ``resolve_model_path`` builds once, reuses, and passes other names through."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
import torch
from rich.progress import Progress
from transformers import AutoModelForCausalLM, AutoTokenizer

from azr.embedded import BuildConfig, BuildInfo, build_embedded_model, embedded_model_dir, resolve_model_path
from azr.embedded.corpus import CorpusConfig
from azr.embedded.model import ModelShape
from azr.embedded.resolve import ENV_CACHE_DIR
from azr.embedded.sft import SFTConfig

TINY = BuildConfig(
    corpus=CorpusConfig(n_programs=24, simple_repeats=0),
    sft=SFTConfig(steps=3, tokens_per_batch=2048, warmup_steps=1),
    shape=ModelShape(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                     intermediate_size=64, max_position_embeddings=1024),
    vocab_size=600,
    probe_per_role=1,
    probe_max_new_tokens=(8, 8),
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("azr-cache")


@pytest.fixture(scope="module")
def built(cache) -> str:
    return resolve_model_path("embedded:tiny", cache_dir=cache, config=TINY)


def test_build_writes_a_loadable_checkpoint_that_generates(built, cache) -> None:
    assert built == str(embedded_model_dir("embedded:tiny", cache))
    tokenizer = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert model.config.model_type == "qwen2"
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.vocab_size == len(tokenizer)
    ids = tokenizer("Predict the output of f", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(out[0]), str)


def test_build_info_records_the_build(built) -> None:
    info = BuildInfo.load(built)
    assert info.sft_steps == 3 and info.corpus_programs > 0 and info.corpus_examples > 0
    assert info.final_loss > 0 and info.seconds["total"] > 0 and info.parameters > 0
    assert set(info.probe) >= {"propose/deduction", "solve/deduction", "propose/induction", "solve/induction"}
    assert all(0.0 <= v <= 1.0 for v in info.probe.values())
    raw = json.loads((Path(built) / "build_info.json").read_text())
    assert raw["config"]["sft"]["steps"] == 3


def test_resolve_reuses_a_build_and_passes_other_names_through(built, cache) -> None:
    stamp = os.stat(Path(built) / "model.safetensors").st_mtime_ns
    start = time.perf_counter()
    assert resolve_model_path("embedded:tiny", cache_dir=cache, config=TINY) == built
    assert time.perf_counter() - start < 1.0
    assert os.stat(Path(built) / "model.safetensors").st_mtime_ns == stamp
    assert resolve_model_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert resolve_model_path("/some/local/dir") == "/some/local/dir"
    with pytest.raises(ValueError, match="unknown embedded model 'embedded:huge'"):
        resolve_model_path("embedded:huge", cache_dir=cache)
    assert not list(cache.glob(".embedded-tiny-v1.tmp-*"))  # the temporary build dir is gone


def test_cache_dir_defaults_to_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path))
    assert embedded_model_dir("embedded:tiny") == tmp_path / "embedded-tiny-v1"
    monkeypatch.delenv(ENV_CACHE_DIR)
    assert embedded_model_dir("embedded:tiny") == Path.home() / ".cache" / "azr" / "embedded-tiny-v1"


def test_incomplete_cache_entry_is_reported_not_used(tmp_path) -> None:
    (tmp_path / "embedded-tiny-v1").mkdir()
    (tmp_path / "embedded-tiny-v1" / "config.json").write_text("{}")
    with pytest.raises(RuntimeError, match="not a complete embedded model.*delete that directory"):
        resolve_model_path("embedded:tiny", cache_dir=tmp_path, config=TINY)


def test_build_refuses_an_existing_directory_and_is_deterministic(built, tmp_path) -> None:
    with pytest.raises(FileExistsError):
        build_embedded_model(built, config=TINY)
    config = dataclasses.replace(TINY, probe_per_role=0)
    a = build_embedded_model(tmp_path / "a", seed=1, config=config)
    # The second build goes through resolve_model_path while the caller shows its own live display.
    with Progress():
        b_path = Path(resolve_model_path("embedded:tiny", cache_dir=tmp_path / "b", seed=1, config=config))
    assert a.final_loss == BuildInfo.load(b_path).final_loss
    wa = AutoModelForCausalLM.from_pretrained(tmp_path / "a").state_dict()
    wb = AutoModelForCausalLM.from_pretrained(b_path).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (b_path / "tokenizer.json").read_text()
