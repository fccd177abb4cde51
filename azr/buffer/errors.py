"""Errors the buffer raises for files it cannot use; each message names the file and the fix."""

from __future__ import annotations


class TaskBufferError(Exception):
    """Base class: a buffer file that is missing, foreign, corrupt or too new."""


class BufferNotFoundError(TaskBufferError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"no task buffer at {path}: pass --db with the path of an existing buffer file, "
            "or --run with a run directory that holds buffer.db"
        )


class NotABufferError(TaskBufferError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(
            f"{path} is not an azr task buffer ({why}): check the path; a buffer is the buffer.db "
            "file of a run directory"
        )


class CorruptBufferError(TaskBufferError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(
            f"{path} is damaged ({why}): restore the buffer snapshot of a checkpoint "
            "(TaskBuffer.restore) or re-import its tasks from an export"
        )


class SchemaTooNewError(TaskBufferError):
    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has buffer schema version {found}, but this azr reads versions up to {supported}: "
            "upgrade azr to read it"
        )
