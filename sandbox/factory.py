"""Pick the sandbox backend by name, so callers (the trainer's ``sandbox.backend``) need not know
which pool they get: both have the same API and the same guarantees."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.pool import Sandbox

if TYPE_CHECKING:
    from sandbox.ray_pool import RaySandbox

BACKENDS = ("local", "ray")


def make_sandbox(backend: str = "local", **kwargs: Any) -> Sandbox | RaySandbox:
    """A :class:`Sandbox` (``"local"``: worker processes on this machine) or a
    :class:`~sandbox.ray_pool.RaySandbox` (``"ray"``: workers in Ray actors; ``address`` selects
    the cluster). ``kwargs`` are the chosen pool's constructor arguments."""
    if backend == "local":
        address = kwargs.pop("address", None)
        if address:
            raise ValueError(f"a Ray address ({address!r}) was given but the sandbox backend is 'local'; "
                             "set the backend to 'ray' or leave the address empty")
        return Sandbox(**kwargs)
    if backend == "ray":
        try:
            from sandbox.ray_pool import RaySandbox
        except ImportError as exc:
            name = exc.name or "ray"  # a broken install may not say which module failed
            if name != "ray" and not name.startswith("ray."):
                raise
            raise ImportError(f"sandbox backend 'ray' needs the ray package ({exc}); install it with "
                              "`pip install 'ray[default]>=2.40'` or use backend 'local'") from exc
        return RaySandbox(**kwargs)
    raise ValueError(f"unknown sandbox backend {backend!r}: choose one of {', '.join(BACKENDS)}")
