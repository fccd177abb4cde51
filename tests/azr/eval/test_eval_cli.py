"""`azr eval math|code|grade` end to end on CPU with a real tiny Qwen2 checkpoint (random weights, a BPE
tokenizer trained in-test; see tests/azr/conftest.py), the real shared benchmark files and the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azr.eval.cli import app
from azr.eval.data import PAPER_MATH, load_humaneval, load_math
from azr.eval.prompts import PromptError, render

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.mark.slow
def test_math_and_code_end_to_end(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    code, text = _run("math", "--model", tiny_model_dir, "--limit", 20, "--max-new-tokens", 8, "--out", out)
    assert code == 0, text
    for name in PAPER_MATH:
        result = json.loads((out / f"{name}.json").read_text())
        assert result["kind"] == "math" and len(result["items"]) == 20
        assert result["headline"]["name"] == "pass@1" and result["headline"]["n"] == 20
        assert result["config"]["template"] == "plain" and result["config"]["max_new_tokens"] == 8
        assert all(len(item["samples"]) == 1 and "response" in item["samples"][0] for item in result["items"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["math_average_over"] == list(PAPER_MATH) and summary["overall"] is None

    code, text = _run("code", "--model", tiny_model_dir, "--limit", 20, "--max-new-tokens", 8, "--out", out)
    assert code == 0, text
    for name in ("humaneval", "mbppplus"):
        result = json.loads((out / f"{name}.json").read_text())
        assert result["kind"] == "code" and result["headline"]["n"] == 20
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == pytest.approx((summary["math_average"] + summary["code_average"]) / 2)
    markdown = (out / "summary.md").read_text()
    assert "| benchmark | problems | metric |" in markdown and "| mbppplus | 20 | pass@1 |" in markdown
    assert "Overall = mean(code average, math average)" in markdown


def test_sampling_reports_avg_and_pass_at_k(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    code, text = _run("math", "--model", tiny_model_dir, "--benchmarks", "amc23", "--limit", 3, "--samples", 4,
                      "--temperature", "1.0", "--max-new-tokens", 6, "--out", tmp_path)
    assert code == 0, text
    result = json.loads((tmp_path / "amc23.json").read_text())
    assert set(result["metrics"]) == {"avg@4", "pass@2", "pass@4", "std_over_runs"}
    assert all(len(item["samples"]) == 4 for item in result["items"])


def test_grade_responses_from_a_file(data_dir: Path, tmp_path: Path) -> None:
    items = load_math("aime24", data_dir)
    lines = []
    for item in items:  # two samples per problem: right, then wrong
        lines.append({"index": item.index, "response": f"So \\boxed{{{item.answer}}}."})
        lines.append({"index": item.index, "response": f"So \\boxed{{{int(item.answer) + 1}}}."})
    responses = tmp_path / "aime24.jsonl"
    responses.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, text = _run("grade", "--benchmark", "aime24", "--responses", responses, "--out", tmp_path / "out")
    assert code == 0, text
    result = json.loads((tmp_path / "out" / "aime24.json").read_text())
    assert result["metrics"]["avg@2"]["value"] == pytest.approx(0.5)
    assert result["metrics"]["pass@2"]["value"] == pytest.approx(1.0)
    assert result["metrics"]["std_over_runs"] == pytest.approx(2**0.5 / 2 * 1.0)  # runs at 1.0 and 0.0


def test_grade_code_responses(tmp_path: Path) -> None:
    items = load_humaneval(limit=5)
    responses = tmp_path / "he.jsonl"
    responses.write_text("".join(
        json.dumps({"index": it.index, "response": f"```python\n{it.canonical_solution}\n```"}) + "\n" for it in items))
    code, text = _run("grade", "--benchmark", "humaneval", "--responses", responses, "--out", tmp_path)
    assert code == 0, text
    result = json.loads((tmp_path / "humaneval.json").read_text())
    assert result["headline"] == {**result["headline"], "name": "pass@1", "value": 1.0, "n": 5}
    assert "5 of 164 humaneval problems have responses" in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"index": 30, "response": "x"}', "'index' 30 is out of range; the benchmark has 30 rows"),
        ('{"index": "0", "response": "x"}', "'index' must be an integer"),
        ('{"index": 0, "response": 5}', "'response' must be a string"),
        ("[1, 2]", "expected an object"),
        ("{oops", "not valid JSON"),
    ],
)
def test_grade_rejects_bad_lines(line: str, message: str, data_dir: Path, tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_text('{"index": 0, "response": "\\\\boxed{1}"}\n' + line + "\n")
    code, text = _run("grade", "--benchmark", "aime24", "--responses", responses, "--out", tmp_path)
    assert code == 2
    assert f"{responses}:2:" in text.replace("\n", "") and message in text.replace("\n", "")


def test_clear_errors(tiny_model_dir: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _run("math", "--model", tiny_model_dir, "--benchmarks", "aime24", "--data-dir", tmp_path)
    assert code == 2 and "missing benchmark file" in text and "aime24.jsonl" in text
    code, text = _run("math", "--model", tiny_model_dir, "--samples", 2)
    assert code == 2 and "--temperature > 0" in text
    code, text = _run("code", "--model", tiny_model_dir, "--benchmarks", "aime24")
    assert code == 2 and "not a code benchmark" in text
    code, text = _run("math", "--model", tmp_path, "--benchmarks", "gsm8k", "--limit", 1)
    assert code == 2 and "no config.json" in text
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1: fail fast
    code, text = _run("math", "--model", "nobody/no-such-model", "--benchmarks", "gsm8k", "--limit", 1)
    assert code == 2 and "could not load it from the Hugging Face hub" in text.replace("\n", " ")


def test_render_templates(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert render("Solve it.", tokenizer, "auto") == "Solve it."  # no chat template: plain text
    assert render("Solve it.", tokenizer, "azr").endswith("User: Solve it.\nAssistant: <think>")
    with pytest.raises(PromptError, match="no chat template"):
        render("Solve it.", tokenizer, "chat")
    tokenizer.chat_template = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"
    assert render("Solve it.", tokenizer, "auto") == "<|user|>Solve it.<|assistant|>"
    assert render("Solve it.", tokenizer, "plain") == "Solve it."
