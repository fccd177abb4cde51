"""A small byte-level BPE tokenizer trained on the warm-up corpus itself.

Byte-level, so any text a prompt or a model reply can hold round-trips exactly (code indentation,
quotes, unicode). The reply tags are added as whole (non-special) tokens: they stay in decoded text,
which the answer parsers need, and cost the tiny model one token each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from azr.tasks.prompts import conversation

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>", "```python", "```input", "```output",
              "```message", "```")

def _chat_template() -> str:
    """A chat template that renders one user message exactly as the trainer does (the plain-text
    conversation wrapper the model was trained on), so chat-style callers get the same prompt."""
    head, tail = (json.dumps(part) for part in conversation("\x00").split("\x00"))  # jinja string literals
    return (
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ " + head + " }}{{ message['content'] }}"
        "{% else %}{{ message['content'] }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ " + tail + " }}{% endif %}"
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int = 3072, model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as an HF fast tokenizer with eos/pad set."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in TAG_TOKENS])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        padding_side="left",  # generation batches pad on the left
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = _chat_template()
    return tok
