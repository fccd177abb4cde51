"""Shared fixtures for azr tests: a real (random, tiny) Qwen2 causal LM with a real BPE tokenizer.

The tokenizer is trained in-test with HF `tokenizers` (byte-level BPE over printable ASCII only, so a
random model emits readable text; non-ASCII characters are dropped when encoding) and
the model is a randomly initialised 2-layer Qwen2; both are saved with ``save_pretrained`` so the
code under test loads them exactly as it would load a hub checkpoint. Nothing is downloaded.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

_CORPUS_LINES = [
    "def f(a):\n    return a * 2\n",
    "def f(xs):\n    return sorted(xs)[::-1]\n",
    "def f(s, n):\n    out = []\n    for i in range(n):\n        out.append(s[i % len(s)])\n    return ''.join(out)\n",
    "def f(d):\n    return {k: v + 1 for k, v in d.items() if v > 0}\n",
    "<think> The function doubles its input, so f(3) is 6. </think> <answer>6</answer>\n",
    "<think> Reverse the sorted list. </think> <answer>[3, 2, 1]</answer>\n",
    "```python\ndef f(a, b):\n    return a + b\n```\n```input\n1, 2\n```\n```output\n3\n```\n",
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\n",
    "User: What is 12 + 30? Assistant: <think> 12 + 30 = 42 </think> <answer>42</answer>\n",
    "The quick brown fox jumps over the lazy dog; numbers 0 1 2 3 4 5 6 7 8 9 and symbols ()[]{}=+-*/%<>.\n",
    string.printable,
]


def train_tiny_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer (ASCII alphabet) trained on a few KB of code-and-answer text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS_LINES * 8, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)


def build_tiny_qwen2(vocab_size: int, eos_token_id: int, pad_token_id: int, seed: int = 0):
    """A random 2-layer Qwen2 (hidden 64). A wide init makes logits peaky, so greedy decoding is stable."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.2,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = eos_token_id
    model.generation_config.pad_token_id = pad_token_id
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding a random tiny Qwen2 and its tokenizer, loadable with ``from_pretrained``."""
    path = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = train_tiny_tokenizer()
    model = build_tiny_qwen2(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def e2e_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded tiny model for end-to-end runs: the cached default build when it exists (a
    developer ran `azr train`), else a small-budget build of the same recipe (about a minute), so the
    trainer sees a model that proposes some valid tasks and solves some."""
    from azr.embedded.build import BuildConfig, build_embedded_model
    from azr.embedded.corpus import CorpusConfig
    from azr.embedded.resolve import embedded_model_dir, is_built
    from azr.embedded.sft import SFTConfig

    cached = embedded_model_dir("embedded:tiny")
    if is_built(cached):
        return cached
    out = tmp_path_factory.mktemp("embedded") / "tiny"
    build_embedded_model(out, seed=0, config=BuildConfig(corpus=CorpusConfig(n_programs=240),
                                                         sft=SFTConfig(steps=160), probe_per_role=0))
    return out
