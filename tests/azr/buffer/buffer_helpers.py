"""Helpers shared by the buffer tests (a plain module: conftest names clash across test folders)."""

from __future__ import annotations

from azr.tasks.record import Complexity, Task


def make_task(program: str = "def f(a):\n    return a * 2", inputs: list[str] | None = None,
              outputs: list[str] | None = None, type_: str = "deduction", **kw: object) -> Task:  # fmt: skip
    """A task as validation would produce it (outputs given, not computed: storage tests only)."""
    inputs = inputs if inputs is not None else ["3"]
    outputs = outputs if outputs is not None else ["6"] * len(inputs)
    kw.setdefault("complexity", Complexity(10, 4, program.count("\n") + 1))
    kw.setdefault("n_shown", max(1, len(inputs) // 2) if type_ == "induction" else 1)
    return Task(type=type_, program=program, inputs=inputs, outputs=outputs, **kw)  # type: ignore[arg-type]


def io_row(snippet: str, input_: str, output: str, imports: list[str] | None = None) -> dict[str, object]:
    """A row as the official *_seed_io.jsonl files write it, extras included."""
    return {"snippet": snippet, "input": input_, "output": output, "imports": imports or [],
            "original_snippet": snippet, "composite_functions": [], "_input_type": "str"}  # fmt: skip


COUNTER_PROGRAM = (
    "from collections import Counter\n\n"
    "def f(text):\n"
    "    counts = Counter(text)\n"
    "    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))\n"
    "    return ''.join(ch * n for ch, n in ranked[:3])"
)
STATE_PROGRAM = (
    "def f(nums, k):\n"
    "    window, best = [], []\n"
    "    for n in nums:\n"
    "        window.append(n)\n"
    "        if len(window) > k:\n"
    "            window.pop(0)\n"
    "        best.append(max(window))\n"
    "    return best"
)
INDUCTION_INPUTS = ["[3, 1, 4, 1, 5], 2", "[9, 2, 6], 1", "[], 3", "[5, 5, 5], 2", "[1, 2, 3, 4], 4",
                    "[7], 1", "[2, 9, 1, 8], 3", "[0, -1, -2], 2", "[10, 20], 5", "[4, 3, 2, 1], 2"]  # fmt: skip


def official_seed_lines() -> tuple[list[str], dict[str, int], dict[str, int], int]:
    """Lines of an official-format seed file mixing valid rows, invalid rows and malformed lines.

    Returns (lines, expected rejections per reason, expected malformed per reason, expected added).
    An io row is validated as a deduction and an abduction task, so its rejections count twice.
    """
    import json

    rows: list[object] = [
        io_row("def f(a):\n    return a", '"Hello world"', '"Hello world"'),
        io_row(COUNTER_PROGRAM, "'mississippi'", "'iiiisssspp'", ["from collections import Counter"]),
        # The official code middle-truncates long outputs; such text is no claim, the sandbox decides.
        io_row("def f(n):\n    return list(range(n))", "150", "[0, 1, 2, 3, ...147, 148, 149]"),
        {"snippet": STATE_PROGRAM, "inputs": INDUCTION_INPUTS,
         "outputs": ["[3, 3, 4, 4, 5]", "[9, 2, 6]", "[]", "[5, 5, 5]", "[1, 2, 3, 4]", "[7]", "[2, 9, 9, 9]",
                     "[0, 0, -1]", "[10, 20]", "[4, 4, 3, 2]"],
         "message": "Track something over a sliding window", "imports": []},  # fmt: skip
        io_row("def f(a):\n    return a / 0", "1", "''"),  # runtime_error
        io_row("import os\ndef f(a):\n    return os.getcwd()", "1", "'/'", ["import os"]),  # banned_import
        io_row("def f(a):\n    return id(object()) + a", "1", "''"),  # nondeterministic
        io_row("def f(a):\n    while True:\n        a += 1", "1", "''"),  # timeout
        io_row("def f(a):\n    return a + 1", "1", "3"),  # output_mismatch: it returns 2
        io_row("def f(a)\n    return a", "1", "1"),  # syntax_error
        {"snippet": "def f(a):\n    return 0", "inputs": ["1", "2", "3", "4"], "outputs": ["0"] * 4,
         "message": "Always the same", "imports": []},  # constant_outputs (induction only)  # fmt: skip
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{this is not json")
    lines.insert(6, json.dumps({"input": "1", "output": "1", "imports": []}))  # missing_field
    lines.insert(8, json.dumps(io_row("def f(a):\n    return a", "1", "1") | {"input": 1}))  # bad_field
    lines.append(json.dumps({"snippet": "def f(a):\n    return a", "examples": []}))  # unknown_row_kind
    lines.append("")
    rejected = {"runtime_error": 2, "banned_import": 2, "nondeterministic": 2, "timeout": 2,
                "output_mismatch": 2, "syntax_error": 2, "constant_outputs": 1}  # fmt: skip
    malformed = {"bad_json": 1, "missing_field": 1, "bad_field": 1, "unknown_row_kind": 1}
    return lines, rejected, malformed, 7
