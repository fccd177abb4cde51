"""Answer and code extraction from model responses."""

from __future__ import annotations

import pytest

from azr.eval.extract import all_boxed, extract_code, extract_math_answer, last_boxed, sanitize


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("nested \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
        ("set \\boxed{\\{1, 2\\}} (escaped braces are literal)", "\\{1, 2\\}"),
        ("first \\boxed{1}, then corrected: \\boxed{2}", "2"),
        ("\\fbox{7}", "7"),
        ("short form $\\boxed 5$", "5"),
        ("spaced \\boxed {12}", "12"),
        ("an unclosed \\boxed{3 is ignored, earlier \\boxed{4} wins", "4"),
        ("<think>hmm</think> <answer>$x = 3$</answer>", "x = 3"),
        ("<think>a</think><answer>\\boxed{9}</answer> \\boxed{9} ", "9"),
        ("Janet makes 18 a day.\n#### 18", "18"),
        ("Therefore, the final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("The answer is 3.5.", "3.5"),
        ("Answer: 42", "42"),
    ],
)
def test_math_answer_extraction(response: str, answer: str) -> None:
    assert extract_math_answer(response) == answer


@pytest.mark.parametrize("response", ["", "I do not know. The numbers 3 and 4 appear here.", "\\boxed{"])
def test_no_answer_gives_none(response: str) -> None:
    # No "last number" fallback: stray numbers in the working never count as an answer.
    assert extract_math_answer(response) is None


def test_all_boxed_in_order_and_last() -> None:
    text = "\\boxed{a} x \\boxed{b{c}d} \\boxed{e}"
    assert all_boxed(text) == ["a", "b{c}d", "e"]
    assert last_boxed(text) == "e"
    assert last_boxed("nothing") is None


def test_code_block_defining_the_entry_point_is_chosen() -> None:
    response = (
        "Helper first:\n```python\ndef helper():\n    return 1\n```\n"
        "Solution:\n```python\ndef add(a, b):\n    return a + b\n```\n"
        "Usage:\n```python\nprint(add(1, 2))\n```"
    )
    assert extract_code(response, "add") == "def add(a, b):\n    return a + b\n"
    two = "```python\ndef one():\n    return 1\n```\n```py\ndef two():\n    return 2\n```"
    assert extract_code(two, "missing") == "def two():\n    return 2\n"  # no block defines it: the last one
    assert extract_code("```text\nnot code\n```\n```python\nx = 1\n```", None) == "x = 1\n"


def test_sanitize_drops_demo_code_but_keeps_definitions() -> None:
    code = (
        "import math\nfrom typing import List\n\nLIMIT = 10\n\n@staticmethod\ndef deco():\n    pass\n\n"
        "def f(x: List[int]) -> int:\n    return sum(x)\n\nprint(f([1]))\nassert f([1]) == 1\n"
        "if __name__ == '__main__':\n    print(input())\n"
    )
    clean = sanitize(code)
    assert "import math" in clean and "LIMIT = 10" in clean and "def f(" in clean and "@staticmethod" in clean
    assert "print" not in clean and "assert" not in clean and "__main__" not in clean


def test_unfenced_response_and_syntax_errors_pass_through() -> None:
    assert extract_code("def f():\n    return 1\nf()\n", "f") == "def f():\n    return 1\n"
    broken = "def f(:\n    pass\n"
    assert extract_code(broken, "f") == broken  # fails in the sandbox with its SyntaxError
