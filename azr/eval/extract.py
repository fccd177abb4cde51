"""Pull the final answer (math) or the program (code) out of a model response.

Pure text processing: nothing here evaluates model text. Code is only parsed with ``ast`` to drop
top-level demo statements, and it then runs inside the sandbox.
"""

from __future__ import annotations

import ast
import re
import warnings

_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_ANSWER_PHRASE = re.compile(r"\banswer\s*(?:is\b|:)\s*:?", re.IGNORECASE)
_INLINE_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the brace group opening at ``text[start] == '{'`` and the index after it.
    Escaped braces (``\\{``, ``\\}``) are literal characters and do not open or close groups."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def all_boxed(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces kept whole),
    plus the ``\\boxed 5`` short form, in order of appearance."""
    found: list[str] = []
    for match in _BOXED.finditer(text):
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            group = _braced(text, i)
            if group is not None:
                found.append(group[0])
        elif i > match.end():  # "\boxed 5": the next token, up to whitespace or '$'
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                found.append(token.group(0))
    return found


def last_boxed(text: str) -> str | None:
    boxes = all_boxed(text)
    return boxes[-1] if boxes else None


def _unwrap_math(text: str) -> str:
    """'$x = 3$.' -> 'x = 3': the last inline-math span if there is one, else the text."""
    spans = [next(g for g in m.groups() if g is not None) for m in _INLINE_MATH.finditer(text)]
    text = spans[-1] if spans else text
    return text.strip().rstrip(".").strip()


def extract_math_answer(response: str) -> str | None:
    """The model's final answer, or None when it gave none.

    Order: the last ``\\boxed{}`` anywhere; else the last ``<answer>...</answer>`` (R1/AZR format);
    else the last ``#### x`` line (GSM8K style); else the last "final answer is x" / "answer: x" phrase.
    Deliberately no "last number in the text" fallback: it rewards numbers that happen to appear in
    the working and inflates scores of models that never answer.
    """
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed.strip()
    tags = _ANSWER_TAG.findall(response)
    if tags and tags[-1].strip():
        return _unwrap_math(tags[-1])
    if "####" in response:
        tail = response.rsplit("####", 1)[1].strip().splitlines()
        if tail and tail[0].strip():
            return _unwrap_math(tail[0])
    phrases = list(_ANSWER_PHRASE.finditer(response))
    if phrases:
        rest = response[phrases[-1].end() :].strip()
        line = rest.splitlines()[0] if rest else ""
        sentence = re.split(r"\.\s", line, maxsplit=1)[0]  # "42. So ..." -> "42"; keeps "3.5"
        return _unwrap_math(sentence) or None
    return None


# --- code -----------------------------------------------------------------------------------------

def code_blocks(response: str) -> list[str]:
    """Fenced code blocks, Python-tagged ones first-class: returns python/py/untagged blocks in order."""
    blocks = []
    for lang, body in _FENCE.findall(response):
        if lang.lower() in ("", "python", "python3", "py"):
            blocks.append(body)
    return blocks


def defines(code: str, name: str) -> bool:
    """Does the code define a function ``name`` (at any indentation)?"""
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def extract_code(response: str, entry_point: str | None = None) -> str:
    """The program in a response: the last fenced block that defines ``entry_point`` (else the last
    fenced block, else the whole response), with top-level demo code removed (see :func:`sanitize`)."""
    blocks = code_blocks(response)
    chosen = None
    if entry_point:
        defining = [b for b in blocks if defines(b, entry_point)]
        chosen = defining[-1] if defining else None
    if chosen is None:
        chosen = blocks[-1] if blocks else response
    return sanitize(chosen)


_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
         ast.Assign, ast.AnnAssign, ast.AugAssign)


def sanitize(code: str) -> str:
    """Keep imports, definitions and assignments; drop top-level calls, prints, asserts and
    ``if __name__ == "__main__":`` blocks (as EvalPlus's sanitizer does), which would otherwise read
    stdin, print, or fail on the model's own examples. Unparseable code is returned unchanged and
    fails in the sandbox with its SyntaxError."""
    try:
        with warnings.catch_warnings():  # invalid escapes in the model's strings are its business
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    lines = code.splitlines(keepends=True)
    kept = []
    for node in tree.body:
        if isinstance(node, _KEEP) or (isinstance(node, ast.Try) and _only_imports(node)):
            start = node.lineno - 1
            if getattr(node, "decorator_list", None):
                start = min(d.lineno for d in node.decorator_list) - 1
            kept.append("".join(lines[start : node.end_lineno]).rstrip("\n"))
    return "\n".join(kept) + ("\n" if kept else "")


def _only_imports(node: ast.Try) -> bool:
    """`try: import x / except ImportError: ...` guards are kept."""
    return all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body)
