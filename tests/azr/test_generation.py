"""HFGenerator on a real (random, tiny) Qwen2: padding, sampling, stop strings, EOS and log-probs."""

from __future__ import annotations

import pytest
import torch

from azr.generation import Generation, HFGenerator, SamplingParams, sequence_logprobs

PROMPTS = [
    "def f(a):",
    "User: What is 12 + 30? Assistant: <think>",
    "A conversation between User and Assistant. The user asks a question",
]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def generator(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    return HFGenerator(model, tokenizer, batch_size=4)


def _check_logprobs(gen: HFGenerator, outs: list[list[Generation]], temperature: float) -> None:
    flat = [g for row in outs for g in row]
    lp, mask, _ = sequence_logprobs(
        gen.model,
        [g.prompt_ids for g in flat],
        [g.completion_ids for g in flat],
        gen.pad_token_id,
        temperature,
    )
    for b, g in enumerate(flat):
        n = len(g.completion_ids)
        assert len(g.logprobs) == n and mask[b].sum().item() == n
        torch.testing.assert_close(torch.tensor(g.logprobs), lp[b, :n], atol=1e-4, rtol=1e-4)


def test_greedy_batched_equals_one_by_one(generator):
    params = SamplingParams(max_new_tokens=12, temperature=0)
    batched = generator.generate(PROMPTS, params)
    single = HFGenerator(generator.model, generator.tokenizer, batch_size=1).generate(PROMPTS, params)
    assert [[g.completion_ids for g in row] for row in batched] == [
        [g.completion_ids for g in row] for row in single
    ]
    for prompt, row in zip(PROMPTS, batched, strict=True):
        assert len(row) == 1
        assert row[0].prompt_ids == generator.encode(prompt)
        assert row[0].text == generator.decode(row[0].completion_ids)


def test_logprobs_match_a_separate_forward_pass(generator):
    greedy = generator.generate(PROMPTS, SamplingParams(max_new_tokens=10, temperature=0))
    _check_logprobs(generator, greedy, 1.0)
    sampled = generator.generate(PROMPTS, SamplingParams(max_new_tokens=10, temperature=0.7, n=2, seed=3))
    _check_logprobs(generator, sampled, 0.7)
    # Greedy picks the arg-max, so its log-prob is the largest of the step: at least -log(vocab).
    assert all(
        lp >= -torch.log(torch.tensor(400.0)).item() for row in greedy for g in row for lp in g.logprobs
    )


def test_sampling_is_random_seeded_and_never_greedy(generator):
    params = SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=7)
    first = generator.generate(PROMPTS[:1], params)[0]
    assert len(first) == 4
    assert len({tuple(g.completion_ids) for g in first}) > 1
    again = generator.generate(PROMPTS[:1], params)[0]
    assert [g.completion_ids for g in again] == [g.completion_ids for g in first]
    other = generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=8))[0]
    assert [g.completion_ids for g in other] != [g.completion_ids for g in first]
    greedy = generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=8, temperature=0, n=3))[0]
    assert len({tuple(g.completion_ids) for g in greedy}) == 1


def test_length_limit(generator):
    outs = generator.generate(PROMPTS, SamplingParams(max_new_tokens=5, temperature=0))
    unfinished = [row[0] for row in outs if not set(generator.eos_token_ids) & set(row[0].completion_ids)]
    assert unfinished, "at least one prompt should run into the limit"
    for g in unfinished:
        assert g.finish_reason == "length" and len(g.completion_ids) == len(g.logprobs) == 5


def _boundary_spanning_stop(gen: HFGenerator, ids: list[int]) -> str | None:
    """A clean (valid UTF-8) stop string that starts inside one token and ends with the next token."""
    for k in range(1, len(ids) - 1):
        a, b = gen.decode(ids[:k]), gen.decode(ids[: k + 1])
        if len(a) >= 2 and b.startswith(a) and len(b) > len(a) and "\ufffd" not in b:
            return a[-1:] + b[len(a) :]
    return None


def test_stop_string_cuts_text_and_ids(generator):
    prompt = None
    for prompt in PROMPTS:
        base = generator.generate([prompt], SamplingParams(max_new_tokens=24, temperature=0))[0][0]
        ids = base.completion_ids
        stop = _boundary_spanning_stop(generator, ids)
        if stop is not None:
            break
    assert stop is not None, "the tiny model should produce some clean multi-char text"
    start = base.text.find(stop)
    params = SamplingParams(max_new_tokens=24, temperature=0, stop=(stop, "never-generated"))
    got = generator.generate([prompt], params)[0][0]
    assert got.finish_reason == "stop"
    assert got.text == base.text[: start + len(stop)] and got.text.endswith(stop)
    assert got.completion_ids == ids[: len(got.completion_ids)]
    assert stop in generator.decode(got.completion_ids)
    assert stop not in generator.decode(got.completion_ids[:-1])  # nothing after the completing token
    assert got.logprobs == pytest.approx(base.logprobs[: len(got.completion_ids)], abs=1e-5)
    excluded = generator.generate(
        [prompt],
        SamplingParams(max_new_tokens=24, temperature=0, stop=(stop,), include_stop_str_in_output=False),
    )[0][0]
    assert excluded.text == base.text[:start]
    assert excluded.completion_ids == got.completion_ids


def test_eos_ends_the_completion_and_is_kept_in_ids(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    plain = HFGenerator(model, tokenizer, batch_size=4)
    params = SamplingParams(max_new_tokens=12, temperature=0)
    base = plain.generate(PROMPTS, params)
    # Declare the token greedy decoding emits 3rd for prompt 0 to be EOS: generation must end there.
    target = base[0][0].completion_ids[2]
    gen = HFGenerator(model, tokenizer, batch_size=4)
    gen.eos_token_ids = [target]
    outs = gen.generate(PROMPTS, params)
    for before, row in zip(base, outs, strict=True):
        ids = before[0].completion_ids
        g = row[0]
        if target in ids:
            cut = ids.index(target) + 1
            assert g.completion_ids == ids[:cut] and g.finish_reason == "stop"
        else:
            assert g.completion_ids[: len(ids)] == ids
        assert g.completion_ids.count(target) <= 1
        assert plain.pad_token_id not in g.completion_ids
        assert len(g.logprobs) == len(g.completion_ids)
    assert outs[0][0].completion_ids[-1] == target and len(outs[0][0].completion_ids) <= 3


def test_sequence_logprobs_entropy_and_grad(generator):
    model = generator.model
    lp, mask, ent = sequence_logprobs(
        model, [[5, 6, 7], [8]], [[9, 10], [11, 12, 13]], generator.pad_token_id, with_entropy=True
    )
    assert lp.shape == mask.shape == ent.shape == (2, 3)
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert lp[0, 2].item() == 0 and ent[0, 2].item() == 0
    assert (lp[mask.bool()] < 0).all() and (ent[mask.bool()] > 0).all()
    assert (ent[mask.bool()] <= torch.log(torch.tensor(float(model.config.vocab_size))) + 1e-4).all()
    lp.sum().backward()
    assert model.model.embed_tokens.weight.grad is not None
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"n": 0}, "n"),
        ({"stop": "</answer>"}, "stop"),
    ],
)
def test_sampling_params_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"SamplingParams\.{field}:"):
        SamplingParams(**kwargs)


def test_per_prompt_caps_and_counts_share_one_call(generator):
    """Proposals and answers go out in one call: each row stops at its own cap, with its own n."""
    caps, ns = [16, 5, 9], [1, 3, 2]
    mixed = generator.generate(PROMPTS, [SamplingParams(max_new_tokens=c, temperature=0, n=k)
                                         for c, k in zip(caps, ns, strict=True)])
    full = generator.generate(PROMPTS, SamplingParams(max_new_tokens=16, temperature=0))
    for row, ref, cap, k in zip(mixed, full, caps, ns, strict=True):
        assert len(row) == k
        want = ref[0].completion_ids[:cap]
        for g in row:
            assert g.completion_ids == want and len(g.completion_ids) <= cap
            if len(ref[0].completion_ids) > cap:
                assert g.finish_reason == "length"
    _check_logprobs(generator, mixed, 1.0)
    sampled = generator.generate(PROMPTS, [SamplingParams(max_new_tokens=c, temperature=1.0, n=k, seed=4)
                                           for c, k in zip(caps, ns, strict=True)])
    assert [len(row) for row in sampled] == ns
    assert all(len(g.completion_ids) <= cap for row, cap in zip(sampled, caps, strict=True) for g in row)
    _check_logprobs(generator, sampled, 1.0)
    with pytest.raises(ValueError, match="3 prompts but 2 SamplingParams"):
        generator.generate(PROMPTS, [SamplingParams(), SamplingParams()])


def test_static_kv_cache_gives_the_same_greedy_completions(generator):
    """generation.cache_implementation=static (tiny.yaml) must not change what is generated."""
    static = HFGenerator(generator.model, generator.tokenizer, batch_size=4, cache_implementation="static")
    params = [SamplingParams(max_new_tokens=c, temperature=0, stop=("</answer>",)) for c in (12, 5, 9)]
    want = generator.generate(PROMPTS, params)
    got = static.generate(PROMPTS, params)
    assert [[g.completion_ids for g in row] for row in got] == [[g.completion_ids for g in row] for row in want]
    _check_logprobs(static, got, 1.0)
