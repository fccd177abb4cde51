"""A fast, isolated executor for untrusted Python: fork server per worker, kernel-level isolation.

    from sandbox import Sandbox
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=512) as sb:
        out = sb.evaluate("def f(a):\\n    return a * 2", ["f(3)", "6"])
        assert out.status == "ok" and out.values[0] == out.values[1]
"""

from sandbox.pool import Job, Result, Sandbox, SandboxError
from sandbox.values import LiteralError, Value, encode, parse_literal

__all__ = ["Job", "LiteralError", "Result", "Sandbox", "SandboxError", "Value", "encode", "parse_literal"]
