"""Task types, prompts, reply parsing, proposal validation and answer checking.

Typical use: ``get_task_type("deduction")`` gives the prompts and parsers of a type;
``candidate_from_reply(type, reply, references, step)`` turns a proposer reply into a candidate
``Task`` (or a ``ParseError``); ``validate(sandbox, candidates, ValidationConfig())`` and
``check_answers(sandbox, [(task, answer), ...])`` each make one ``evaluate_many`` call per batch.
"""

from azr.tasks.arguments import Arguments, parse_arguments, parse_value
from azr.tasks.checking import CheckConfig, Verdict, check_answers, check_replies
from azr.tasks.errors import FormatError, ParseError, Rejection
from azr.tasks.parsing import DEFAULT_LIMITS, Answer, ParseLimits, Proposal
from azr.tasks.record import Complexity, SolveRecord, Task, ValidationTrace
from azr.tasks.registry import TaskType, get_task_type, register_task_type, task_type_names
from azr.tasks.validation import ValidationConfig, ValidationOutcome, candidate_from_reply, validate

__all__ = [
    "DEFAULT_LIMITS",
    "Answer",
    "Arguments",
    "CheckConfig",
    "Complexity",
    "FormatError",
    "ParseError",
    "ParseLimits",
    "Proposal",
    "Rejection",
    "SolveRecord",
    "Task",
    "TaskType",
    "ValidationConfig",
    "ValidationOutcome",
    "ValidationTrace",
    "Verdict",
    "candidate_from_reply",
    "check_answers",
    "check_replies",
    "get_task_type",
    "parse_arguments",
    "parse_value",
    "register_task_type",
    "task_type_names",
    "validate",
]
