"""The locally trained byte-level BPE tokenizer: exact round trips, tags as single tokens, and a
save/load cycle through ``AutoTokenizer``."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from azr.embedded.tokenizer import EOS_TOKEN, PAD_TOKEN, TAG_TOKENS, train_tokenizer
from azr.tasks.prompts import conversation

_TEXTS = [
    "def f(s):\n    return s[::-1]\n",
    "<think> s = 'abc'. return 'cba'. </think> <answer>\n```output\n'cba'\n```\n</answer>",
    "```python\ndef f(nums):\n    return sum(nums)\n```\n```input\n[1, 2, 3]\n```",
] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(_TEXTS, vocab_size=400)


@pytest.mark.parametrize(
    "text",
    [
        "def f(x):\n\tif x:\n        return {'a': [1, (2,)], 'b': None}\n",
        "héllo wörld → ✓ 日本語 \x00 \r\n trailing   ",
        "<think> </think> <answer>\n```input\n'a', 3\n```\n</answer>",
        "",
    ],
)
def test_round_trip(tokenizer, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_tags_are_single_tokens_kept_in_decoded_text(tokenizer) -> None:
    for tag in TAG_TOKENS:
        ids = tokenizer(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, tag
        assert tokenizer.decode(ids, skip_special_tokens=True) == tag


def test_special_tokens_and_reload(tokenizer, tmp_path) -> None:
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.pad_token == PAD_TOKEN
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    assert tokenizer("abc")["input_ids"] == tokenizer("abc", add_special_tokens=False)["input_ids"]  # no BOS
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = _TEXTS[1]
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.eos_token_id == tokenizer.eos_token_id and loaded.pad_token_id == tokenizer.pad_token_id
    assert loaded.padding_side == "left"


def test_chat_template_renders_the_trainers_wrapper(tokenizer, tmp_path) -> None:
    prompt = "Predict the output of f for the input."
    messages = [{"role": "user", "content": prompt}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == conversation(prompt)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == conversation(prompt)
