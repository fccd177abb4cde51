"""Prompt renderers for the three code-reasoning task types, and renderers for well-formed replies.

Renderers take plain data (:class:`~azr.tasks.record.Task` records) and return strings; token
budgets are the caller's business. Two styles: ``"compact"`` (default; a 1k-token model fits two
references) and ``"paper"`` (longer instructions in the spirit of the AZR prompts). Every prompt
asks for ``<think> ... </think> <answer> ... </answer>`` with fenced blocks inside the answer,
which is exactly what :mod:`azr.tasks.parsing` reads; the ``*_reply`` renderers produce replies
that parse (used for synthetic corpora and tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from azr.tasks.record import Task

STYLES = ("compact", "paper")


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")


def fence(tag: str, content: str) -> str:
    """A fenced block as the parsers expect it."""
    return f"```{tag}\n{content}\n```"


def conversation(prompt: str) -> str:
    """R1-style wrapper for base models without a chat template; ends with an open ``<think>``."""
    return (
        "A conversation between User and Assistant. The User gives a task; the Assistant first "
        "reasons about it inside <think> </think> and then gives the final answer inside "
        "<answer> </answer>.\n"
        f"User: {prompt}\nAssistant: <think>"
    )


# ---------------------------------------------------------------------------------------------
# Shared wording

_REPLY_FORMAT = "Reply as: <think> your reasoning </think> <answer> the blocks below </answer>"

_PROGRAM_RULES_COMPACT = (
    "Rules: f takes at least one argument and returns plain data (numbers, strings, lists, tuples, "
    "dicts, sets); it is deterministic (no random, time, I/O or printing) and runs in under a second."
)

_PROGRAM_RULES_PAPER = """Code requirements:
- Name the entry function `f`. Helper functions and classes are allowed; define them (and any imports) above or inside `f`.
- `f` takes at least one argument and must return a value made of plain data: numbers, strings, bytes, None, booleans, and lists, tuples, dicts and sets of those.
- The program must be deterministic: do not use random numbers, dates or times, files, the network, printing, logging or any external state, and do not depend on object identities or hashing order.
- It must finish within a few seconds and must not import os, sys, random, time, datetime, subprocess or similar modules.
- Prefer logic that needs careful, multi-step reasoning to follow: several transformations, loops and state that changes along the way."""

_INPUT_RULES = (
    "The input is the argument list of one call to f, written as Python literals: strings quoted, "
    "several arguments separated by commas (e.g. 'abc', [1, 2]); keyword arguments like k=3 are allowed."
)


def _reference(i: int, task: Task, show_output: bool = True) -> str:
    parts = [f"Reference {i}:", fence("python", task.program)]
    if task.inputs:
        parts.append(fence("input", task.inputs[0]))
    if show_output and task.outputs:
        parts.append(fence("output", task.outputs[0]))
    return "\n".join(parts)


def _references(references: Sequence[Task]) -> str:
    if not references:
        return ""
    return "\n\n" + "\n\n".join(_reference(i + 1, t) for i, t in enumerate(references))


# ---------------------------------------------------------------------------------------------
# Propose prompts


def propose_program_prompt(references: Sequence[Task], solver_sees: str, style: str = "compact") -> str:
    """Deduction/abduction proposal: write a new program and one input, unlike the references.

    ``solver_sees`` says what the solver will be shown: ``"input"`` (deduction: predict the output)
    or ``"output"`` (abduction: find an input).
    """
    _check_style(style)
    if solver_sees not in ("input", "output"):
        raise ValueError(f"solver_sees must be 'input' or 'output', got {solver_sees!r}")
    goal = (
        "will see the program and the input and must predict the output"
        if solver_sees == "input"
        else "will see the program and the output and must find an input that produces it"
    )
    example = fence("python", "def f(...):\n    ...") + "\n" + fence("input", "arguments for f")
    if style == "compact":
        head = (
            f"Write a new Python program defining a function f, and one input for it. A solver {goal}.\n"
            f"{_PROGRAM_RULES_COMPACT} Make it different from the references and hard to solve "
            "without careful reasoning.\n"
            f"{_REPLY_FORMAT}:\n{example}"
        )
    else:
        head = (
            "## Task: create a new Python code snippet and one matching input\n"
            f"Design a new, unique program and an input for it. The program and the input form a test: "
            f"a test subject {goal}. Use the reference snippets below as examples of the format, but make "
            "yours clearly different from them, and challenging without being impossible.\n\n"
            f"{_PROGRAM_RULES_PAPER}\n\nInput requirements:\n- Give exactly one input. {_INPUT_RULES}\n\n"
            "Formatting: put the program in a ```python block and the input in an ```input block, "
            f"both inside the answer section.\n{_REPLY_FORMAT}:\n{example}\n\n"
            "First plan carefully inside <think>, then write the answer."
        )
    return head + _references(references)


def propose_induction_prompt(
    references: Sequence[Task], n_inputs: int = 10, n_shown: int = 5, style: str = "compact"
) -> str:
    """Induction proposal: for the program of ``references[0]``, write inputs and a message.

    As in the paper the proposer does not write the program: it is sampled from the buffer by the
    caller and passed as the first reference (other references are ignored).
    """
    _check_style(style)
    if not references:
        raise ValueError("propose_induction_prompt needs one reference task whose program is used")
    program = references[0].program
    example = "\n".join(fence("input", f"arguments {i + 1}") for i in range(2))
    example += "\n...\n" + fence("message", "a hint about what f does, without code")
    held_out = n_inputs - n_shown
    if style == "compact":
        head = (
            f"Here is a program defining f. Write {n_inputs} different inputs for f and a message. A solver "
            f"will see {n_shown} of the input/output pairs and the message and must write f; the other "
            f"{held_out} pairs test it. Choose inputs that together reveal what f does; the message is a "
            "short hint and must not contain code.\n"
            f"{_INPUT_RULES}\n"
            f"{_REPLY_FORMAT}: {n_inputs} ```input blocks, then one ```message block.\n{example}"
        )
    else:
        head = (
            f"## Task: write {n_inputs} inputs for a program, and a message\n"
            f"A test subject will be shown {n_shown} of your inputs together with the outputs the program "
            f"gives for them, plus your message, and must reconstruct the program; the remaining {held_out} "
            "inputs are kept hidden and used to check the reconstruction. Pick inputs that cover the input "
            "space well and produce varied outputs, so that the behaviour of f can be deduced from them. "
            "The task should be challenging but possible.\n\n"
            f"Input requirements:\n- Exactly {n_inputs} inputs, each different, each in its own ```input block.\n"
            f"- {_INPUT_RULES}\n\n"
            "Message requirements:\n- One ```message block with a hint for the test subject, for example "
            "a short description of the problem the function solves. It must not contain the code.\n\n"
            f"{_REPLY_FORMAT}:\n{example}\n\nFirst plan carefully inside <think>, then write the answer."
        )
    return head + "\n\nProgram:\n" + fence("python", program)


# ---------------------------------------------------------------------------------------------
# Solve prompts


def solve_deduction_prompt(task: Task, style: str = "compact") -> str:
    """Show the program and the input; ask for the output as a literal in an ```output block."""
    _check_style(style)
    body = fence("python", task.program) + "\n" + fence("input", task.inputs[0])
    answer = fence("output", "the value f returns, as a Python literal")
    if style == "compact":
        return f"Predict the output of f for the input.\n{body}\n{_REPLY_FORMAT}:\n{answer}"
    return (
        "## Task: deduce the output of a program\n"
        "Work out, step by step, what the function f returns when it is called with the given input.\n\n"
        f"{body}\n\n"
        "Write the returned value as a Python literal: quote strings, use a tuple when f returns several "
        f"values, and write containers in full.\n{_REPLY_FORMAT}:\n{answer}"
    )


def solve_abduction_prompt(task: Task, style: str = "compact") -> str:
    """Show the program and the output; ask for any input that produces it."""
    _check_style(style)
    body = fence("python", task.program) + "\n" + fence("output", task.outputs[0])
    answer = fence("input", "arguments for f")
    if style == "compact":
        return f"Find an input for which f returns the output.\n{body}\n{_INPUT_RULES}\n{_REPLY_FORMAT}:\n{answer}"
    return (
        "## Task: deduce an input of a program\n"
        "Find one input such that calling f with it returns exactly the given output. Any input that "
        "works is accepted.\n\n"
        f"{body}\n\n{_INPUT_RULES}\n{_REPLY_FORMAT}:\n{answer}"
    )


def solve_induction_prompt(task: Task, style: str = "compact") -> str:
    """Show the first ``task.n_shown`` input/output pairs and the message; ask for the program."""
    _check_style(style)
    pairs = "\n".join(
        fence("input", i) + "\n" + fence("output", o)
        for i, o in zip(task.inputs[: task.n_shown], task.outputs[: task.n_shown])
    )
    message = fence("message", task.message) if task.message else ""
    answer = fence("python", "def f(...):\n    ...")
    if style == "compact":
        return (
            "Write a Python function f that gives these outputs for these inputs (hidden inputs test it too).\n"
            f"{pairs}\n{message}\n{_REPLY_FORMAT}:\n{answer}"
        )
    return (
        "## Task: deduce the function that produced the outputs\n"
        "Below are inputs, the outputs a hidden function f returned for them, and a message about f. "
        "Reconstruct f: work through the pairs, form a hypothesis, check it against every pair, and "
        "revise until it fits. More inputs, not shown, will be used to test your function.\n\n"
        f"{pairs}\n{message}\n\n"
        "Code requirements: name the function f; it may use helpers and classes defined in the same "
        "block; it must be deterministic and return plain data.\n"
        f"{_REPLY_FORMAT}:\n{answer}"
    )


# ---------------------------------------------------------------------------------------------
# Well-formed replies (synthetic corpora, tests)


def _reply(think: str, blocks: Sequence[str]) -> str:
    return f"<think> {think} </think> <answer>\n" + "\n".join(blocks) + "\n</answer>"


def program_proposal_reply(program: str, input_text: str, think: str = "") -> str:
    """A deduction/abduction proposal reply: program and one argument list."""
    return _reply(think, [fence("python", program), fence("input", input_text)])


def induction_proposal_reply(input_texts: Sequence[str], message: str, think: str = "") -> str:
    """An induction proposal reply: several argument lists and a message."""
    return _reply(think, [*(fence("input", t) for t in input_texts), fence("message", message)])


def output_answer_reply(output_text: str, think: str = "") -> str:
    """A deduction answer reply."""
    return _reply(think, [fence("output", output_text)])


def input_answer_reply(input_text: str, think: str = "") -> str:
    """An abduction answer reply."""
    return _reply(think, [fence("input", input_text)])


def program_answer_reply(program: str, think: str = "") -> str:
    """An induction answer reply."""
    return _reply(think, [fence("python", program)])
