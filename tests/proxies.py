"""One generic proxy over any port: counts its operations and fails chosen ones on demand.

A port is a Protocol of async methods, so one `__getattr__` wrapper serves every port: a new port
needs no hand-written counting or faulty twin. Tests pin the counts (a count, unlike a timing, is
deterministic) and the benchmark reports them; neither the proxy nor the port changes what the
wrapped adapter does.
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

P = TypeVar("P")

# Not part of a request's cost: health probes and shutdown.
UNCOUNTED = frozenset({"ping", "close"})


class PortSpy:
    """Forwards to `inner`; counts each async call by name and raises the exception `fail` maps
    its name ("create") or its name and container ("create:users") to, instead of forwarding.

    The container is the first positional argument when it is a string (every DocumentStore
    operation takes one); for other ports only the bare name matters.
    """

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, BaseException] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name not in UNCOUNTED:
                self.calls[name] += 1
            container = args[0] if args and isinstance(args[0], str) else ""
            for key in (name, f"{name}:{container}"):
                if key in self.fail:
                    raise self.fail[key]
            return await cast(Callable[..., Awaitable[Any]], attr)(*args, **kwargs)

        return call


def spy(port: P) -> P:
    """`port` wrapped in a PortSpy, typed as the port it stands in for."""
    return cast(P, PortSpy(port))


def spy_of(port: object) -> PortSpy:
    """The PortSpy a port was wrapped in by `spy` (fails if it was not)."""
    assert isinstance(port, PortSpy), f"{port!r} is not spied on"
    return port
