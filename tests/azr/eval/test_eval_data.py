"""Benchmark loaders: per-set field names normalised to (id, problem, gold answer); clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azr.eval.data import (
    BenchmarkDataError,
    canonical_name,
    humaneval_path,
    load_code,
    load_humaneval,
    load_math,
    mbpp_inputs,
)


def test_field_mapping_per_set(data_dir: Path) -> None:
    gsm = load_math("gsm8k", data_dir, limit=1)[0]
    assert gsm.answer == "18" and gsm.numeric and gsm.problem.startswith("Janet")  # text after '####'
    amc = load_math("amc23", data_dir, limit=1)[0]
    assert amc.answer == "27" and amc.numeric  # 27.0 in the file
    minerva = load_math("minerva", data_dir, limit=1)[0]
    assert minerva.answer == "1.6"  # the last \boxed{} of the solution
    olympiad = load_math("olympiadbench", data_dir)
    assert all("$" not in item.answer for item in olympiad)
    assert any(item.multiple for item in olympiad) and any(item.unit for item in olympiad)
    assert sum(item.tolerance is not None for item in olympiad) == 1
    math500 = load_math("math500", data_dir, limit=1)[0]
    assert math500.answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and not math500.numeric
    assert [item.index for item in load_math("aime25", data_dir, limit=3)] == [0, 1, 2]


def test_code_sets_load(data_dir: Path) -> None:
    humaneval = load_humaneval()
    assert len(humaneval) == 164 and humaneval_path().name == "HumanEval.jsonl.gz"
    assert humaneval[0].test and "def check" in humaneval[0].test
    mbpp = load_code("mbppplus", data_dir)
    assert len(mbpp) == 378
    assert sum(len(it.base_inputs) + len(it.plus_inputs) for it in mbpp) > 40_000
    by_id = {it.id: it for it in mbpp}
    assert by_id["Mbpp/2"].base_inputs[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]  # EvalPlus restores tuples
    assert by_id["Mbpp/793"].plus_inputs == []  # shipped as `{}`
    assert {it.atol for it in mbpp} == {0.0, 0.0001}


def test_mbpp_type_restoration() -> None:
    assert mbpp_inputs("Mbpp/124", [[1, "1+2j"]]) == [[1.0, complex(1, 2)]]
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]]]]) == [[(1, (2, 3))]]
    assert mbpp_inputs("Mbpp/722", [[{"a": [1, 2]}, 3]]) == [[{"a": (1, 2)}, 3]]
    assert mbpp_inputs("Mbpp/115", [[[[1], []]]]) == [[[{1}, {}]]]
    assert mbpp_inputs("Mbpp/3", [[5]]) == [[5]]


def test_missing_data_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=r"missing benchmark file .*math/aime24\.jsonl.*--data-dir"):
        load_math("aime24", tmp_path)


def test_bad_rows_name_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "math").mkdir()
    path = tmp_path / "math" / "gsm8k.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"gsm8k\.jsonl: row 0 'answer' has no '####"):
        load_math("gsm8k", tmp_path)
    path.write_text(json.dumps({"answer": "#### 3"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="row 0 has no 'question' field"):
        load_math("gsm8k", tmp_path)
    path.write_text("{not json\n")
    with pytest.raises(BenchmarkDataError, match=r"gsm8k\.jsonl:1: not valid JSON"):
        load_math("gsm8k", tmp_path)


def test_unknown_benchmark_lists_the_known_ones() -> None:
    assert canonical_name("minerva_math") == "minerva" and canonical_name("MBPP+") == "mbppplus"
    with pytest.raises(BenchmarkDataError, match="unknown benchmark 'aime23'.*aime24"):
        canonical_name("aime23")
