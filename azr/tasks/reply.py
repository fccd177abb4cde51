"""Cutting a model reply into its answer section and fenced blocks (text only, no parsing of code).

Replies look like ``<think> ... </think> <answer> ```tag\\n...\\n``` </answer>``. Small models drop
tags, forget to close them, or leave a fence unterminated, so this is deliberately tolerant: the
*last* ``<answer>`` opens the section (as in the paper), a missing ``</answer>`` means "until the
end", and a last unterminated fence runs to the end of the section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from azr.tasks.errors import FormatError, ParseError

_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,31}")
_TAG_ALIASES = {"py": "python", "python3": "python", "py3": "python"}


@dataclass(frozen=True)
class Block:
    """One fenced block: its normalized language tag ("" when untagged) and its content."""

    tag: str
    content: str


def answer_section(reply: object, max_chars: int) -> str | ParseError:
    """Return the text of the last ``<answer>`` section, or a named error."""
    if not isinstance(reply, str):
        return ParseError(FormatError.NOT_TEXT, f"reply is {type(reply).__name__}, not str")
    if len(reply) > max_chars:
        return ParseError(FormatError.TOO_LONG, f"reply has {len(reply)} characters (limit {max_chars})")
    last = None
    for match in _ANSWER_OPEN.finditer(reply):
        last = match
    if last is None:
        return ParseError(FormatError.NO_ANSWER_TAG, "no <answer> tag")
    body = reply[last.end() :]
    close = _ANSWER_CLOSE.search(body)
    if close is not None:
        body = body[: close.start()]
    if not body.strip():
        return ParseError(FormatError.EMPTY_ANSWER, "<answer> section is empty")
    return body


def fenced_blocks(text: str) -> list[Block]:
    """All ```-fenced blocks in ``text`` in order; an unterminated last fence runs to the end."""
    parts = text.split("```")
    blocks = []
    for raw in parts[1::2]:
        blocks.append(_block(raw))
    return blocks


def _block(raw: str) -> Block:
    first, newline, rest = raw.partition("\n")
    name = first.strip()
    if newline and (not name or _TAG.fullmatch(name)):
        tag = name.lower()
        return Block(_TAG_ALIASES.get(tag, tag), rest.strip("\n"))
    return Block("", raw.strip())  # ```6``` or a fence whose first line is already content


def last_block(blocks: list[Block], tag: str, untagged: bool = True) -> Block | None:
    """The last block with ``tag``; failing that (if ``untagged``) the last block without a tag."""
    for block in reversed(blocks):
        if block.tag == tag:
            return block
    if untagged:
        for block in reversed(blocks):
            if block.tag == "":
                return block
    return None
