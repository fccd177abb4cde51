"""Evaluation prompts: step-by-step math with a boxed answer, and a complete Python function for code.

The instruction text is wrapped for the model by ``template``:
  auto   the tokenizer's chat template when it has one, else the plain instruction text
  chat   the tokenizer's chat template (error if it has none)
  plain  the instruction text as is (base models, the paper's "qwen-boxed"-style base prompting)
  azr    the R1-style "User: ... Assistant: <think>" wrapper that AZR checkpoints were trained with
"""

from __future__ import annotations

from typing import Any

from azr.eval.data import CodeItem, MathItem

TEMPLATES = ("auto", "chat", "plain", "azr")

MATH_INSTRUCTION = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."

CODE_INSTRUCTION = (
    "Write a complete, self-contained Python function that solves the task below. Keep the function "
    "name and signature, include the imports it needs, and put the whole function in a single "
    "```python code block.\n\n```python\n{prompt}\n```"
)

AZR_WRAPPER = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>.\nUser: {instruction}\nAssistant: <think>"
)


class PromptError(ValueError):
    """The requested template cannot be applied (e.g. ``chat`` with a tokenizer that has none)."""


def math_instruction(item: MathItem) -> str:
    return MATH_INSTRUCTION.format(problem=item.problem.strip())


def code_instruction(item: CodeItem) -> str:
    return CODE_INSTRUCTION.format(prompt=item.prompt.strip("\n"))


def instruction(item: MathItem | CodeItem) -> str:
    return math_instruction(item) if isinstance(item, MathItem) else code_instruction(item)


def uses_chat_template(tokenizer: Any, template: str) -> bool:
    if template not in TEMPLATES:
        raise PromptError(f"unknown --template {template!r}; choose one of {', '.join(TEMPLATES)}")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has_chat:
        raise PromptError("--template chat: this tokenizer has no chat template; use --template plain or azr")
    return template == "chat" or (template == "auto" and has_chat)


def render(text: str, tokenizer: Any, template: str = "auto") -> str:
    """The exact string the model is fed for one instruction."""
    if uses_chat_template(tokenizer, template):
        messages = [{"role": "user", "content": text}]
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    if template == "azr":
        return AZR_WRAPPER.format(instruction=text)
    return text
