"""Helpers shared by the benchmark scripts: a local random tiny model and a note on machine load.

A random model is the honest stand-in for throughput work: it never stops early (EOS is one token in
thousands), so every completion runs to the length cap on both sides of a comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
# The answer tags cost the embedded model one token each; keep that property here.
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>", "```python", "```input", "```output",
              "```message", "```")


@dataclass(frozen=True)
class TinyShape:
    """Defaults follow the embedded model (azr/embedded/model.py): about 3 M parameters."""

    hidden: int = 192
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 768
    vocab: int = 3072


def _corpus() -> list[str]:
    """The repository's own Python and prompt text: code-shaped, like what the model reads and writes."""
    texts = []
    for path in sorted((ROOT / "azr").rglob("*.py")) + sorted((ROOT / "sandbox").rglob("*.py")):
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return texts


def build_random_model(out_dir: Path, shape: TinyShape = TinyShape(), seed: int = 0) -> Path:
    """Train a byte-level BPE tokenizer and save a randomly initialised Qwen2 of ``shape`` in ``out_dir``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from azr.embedded.model import ModelShape, make_model  # the embedded model's architecture, random weights

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=shape.vocab - len(TAG_TOKENS), special_tokens=[EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(_corpus(), trainer=trainer)
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in TAG_TOKENS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                        model_max_length=4096, clean_up_tokenization_spaces=False)
    model = make_model(tokenizer, ModelShape(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                                             num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                                             intermediate_size=shape.intermediate, max_position_embeddings=4096),
                       seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


def embedded_model_path() -> str | None:
    """The built-in model's directory when it is already built in the cache, else None.

    Never builds it: a build trains for minutes, which a benchmark must not start behind the user's back
    (``python -m azr.embedded`` or a first ``azr train`` builds it)."""
    try:
        from azr.embedded.resolve import embedded_model_dir, is_built
    except ImportError:
        return None
    path = embedded_model_dir("embedded:tiny")
    if not is_built(path):
        print(f"note: embedded:tiny is not built ({path}); using a random model of the same shape")
        return None
    return str(path)


def load_note() -> str:
    """Load average and core count: the machine is shared, so every figure needs this next to it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} cores"
