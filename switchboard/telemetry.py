"""Traces and metrics through OpenTelemetry: what an on-call engineer asks of a running Switchboard.

Off by default, and then nothing of OpenTelemetry is imported: every counter is a no-op and every
span a shared empty context manager, so cold start and handler time stay where they were.
`telemetry_setup.configure(mode)` turns it on (the runtime calls it once, from
`SWITCHBOARD_TELEMETRY`); this module holds only what services and the route decorator use, and
imports no SDK:

- `azuremonitor`: the Azure Monitor OpenTelemetry distro, authenticated with the app's managed
  identity (`AZURE_CLIENT_ID`), reading `APPLICATIONINSIGHTS_CONNECTION_STRING` as the Functions
  host sets it. The distro turns on the Azure SDKs' own spans (azure-core tracing), so every
  Cosmos, ACS, SMS, chat, rooms and hub call shows as a dependency of its request, timed.
- `otlp`: the OTLP/HTTP exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`, the standard variable).
- `console`: spans and metrics printed on stdout (development).

The route decorator opens one SERVER span per request (`server_span`); the Azure SDKs' spans and
the local store's (`client_span`, where no SDK span exists) become its children.

Metrics (named in docs/operations.md) are counters and one gauge, each with a closed set of
attribute names and values: nothing a caller sends — no user id, phone number or token — can
become an attribute: `add` counts anything outside the declared values as "other".
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

log = logging.getLogger("switchboard.telemetry")

Mode = Literal["off", "console", "otlp", "azuremonitor"]
MODES: tuple[Mode, ...] = ("off", "console", "otlp", "azuremonitor")

DEPENDENCIES = frozenset({"acs", "chat", "sms", "graph", "push", "rooms", "store", "jwks"})
_REASONS = frozenset({"budget", "acs_unavailable"})
_SMS_OUTCOMES = frozenset({"sent", "failed", "opted_out"})


class Counter:
    """A monotonic counter whose attributes must come from a declared, closed set."""

    def __init__(
        self, name: str, description: str, unit: str, allowed: Mapping[str, frozenset[str] | None]
    ) -> None:
        self.name = name
        self.description = description
        self.unit = unit
        # attribute name → allowed values; None: values checked by `check_value` at add time.
        self.allowed = allowed
        self._instrument: Any = None

    def add(self, amount: int = 1, **attributes: str) -> None:
        if self._instrument is not None:
            self._instrument.add(amount, _checked(self, attributes))


OTHER = "other"


def _checked(counter: Counter, attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes with every undeclared name dropped and every undeclared value replaced by
    "other" (and logged once): a bug can cost a metric its detail, never leak what it named, and
    never fail the request that counted."""
    checked: dict[str, str] = {}
    for key, value in attributes.items():
        if key not in counter.allowed:
            _warn_once(counter.name, key)
            continue
        allowed = counter.allowed[key]
        ok = value in allowed if allowed is not None else _KIND_NAME.fullmatch(value) is not None
        if not ok:
            _warn_once(counter.name, key)
        checked[key] = value if ok else OTHER
    return checked


_warned: set[tuple[str, str]] = set()


def _warn_once(metric: str, key: str) -> None:
    if (metric, key) not in _warned:
        _warned.add((metric, key))
        log.warning("metric %s: an undeclared %s was counted as %r", metric, key, OTHER)


# Reaction kinds are names in the code's table ("club", "pair"): short lowercase words. Checked by
# shape, which no user id, number or token of interest slips through as a metric dimension.
_KIND_NAME = re.compile(r"[a-z][a-z_]{0,23}")


_KIND: Mapping[str, frozenset[str] | None] = {"kind": None}

TOKENS_ISSUED = Counter(
    "switchboard.tokens.issued", "ACS tokens issued to callers (ACS and Teams)", "{token}", {}
)
TOKENS_REFUSED = Counter(
    "switchboard.tokens.refused",
    "token requests refused: over the caller's budget, or ACS throttling the resource",
    "{request}",
    {"reason": _REASONS},
)
DEPENDENCY_THROTTLED = Counter(
    "switchboard.dependency.throttled",
    "429 answers from a dependency",
    "{response}",
    {"dependency": DEPENDENCIES},
)
DEPENDENCY_TIMEOUTS = Counter(
    "switchboard.dependency.timeouts",
    "calls to a dependency abandoned at their time bound, or failed to connect",
    "{call}",
    {"dependency": DEPENDENCIES},
)
REACTIONS_ENQUEUED = Counter(
    "switchboard.reactions.enqueued", "follow-up work recorded", "{item}", _KIND
)
REACTIONS_DONE = Counter("switchboard.reactions.done", "follow-up work reconciled", "{item}", _KIND)
REACTIONS_RETRIED = Counter(
    "switchboard.reactions.retried", "reconciler failures retried", "{item}", _KIND
)
REACTIONS_PARKED = Counter(
    "switchboard.reactions.parked", "work parked after its last attempt", "{item}", _KIND
)
SMS = Counter(
    "switchboard.sms",
    "SMS sent, failed, or found opted out",
    "{message}",
    {"outcome": _SMS_OUTCOMES},
)
PUSHES_SENT = Counter("switchboard.pushes.sent", "push sends to the hub", "{send}", {})

COUNTERS = (
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    DEPENDENCY_THROTTLED,
    DEPENDENCY_TIMEOUTS,
    REACTIONS_ENQUEUED,
    REACTIONS_DONE,
    REACTIONS_RETRIED,
    REACTIONS_PARKED,
    SMS,
    PUSHES_SENT,
)

# The age of the oldest due reaction item and the parked count, as the last backlog read saw them
# (a gauge observed by the meter's reader; set by whoever reads the backlog: health, the worker).
BACKLOG_GAUGES = ("switchboard.reactions.oldest_age", "switchboard.reactions.parked_now")
_backlog = {"oldest_age": 0.0, "parked": 0.0}


def observe_backlog(oldest_age_seconds: float | None, parked: int) -> None:
    _backlog["oldest_age"] = oldest_age_seconds or 0.0
    _backlog["parked"] = float(parked)


# --- spans --------------------------------------------------------------------------------------


class _NoSpan:
    """What a span is while telemetry is off: enter, exit, set nothing."""

    def set_attribute(self, key: str, value: object) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()
_tracer: Any = None
_lock = threading.Lock()


def enabled() -> bool:
    return _tracer is not None


def server_span(name: str, method: str, route: str) -> Any:
    """The request's span (SERVER, or INTERNAL under a host's own request span)."""
    if _tracer is None:
        return _NO_SPAN
    return _server_span(name, method, route)


@contextlib.contextmanager
def _server_span(name: str, method: str, route: str) -> Iterator[Any]:
    from opentelemetry import trace

    parent = trace.get_current_span().get_span_context()
    kind = trace.SpanKind.INTERNAL if parent.is_valid else trace.SpanKind.SERVER
    # The route template, never the path: a path carries user and club ids.
    with _tracer.start_as_current_span(
        f"{method} /api/{route}",
        kind=kind,
        attributes={"http.request.method": method, "http.route": f"/api/{route}", "code": name},
    ) as span:
        yield span


def client_span(dependency: str, operation: str) -> Any:
    """A dependency call's span where no SDK makes one (the local SQLite store)."""
    if _tracer is None:
        return _NO_SPAN
    if dependency not in DEPENDENCIES:
        raise ValueError(f"unknown dependency {dependency!r}")
    from opentelemetry import trace

    return _tracer.start_as_current_span(
        f"{dependency} {operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={"peer.service": dependency, "db.operation.name": operation},
    )


# --- what spans may say ---------------------------------------------------------------------------

# A path segment kept as it is: a fixed word of a REST API ("dbs", "docs", "identities",
# ":issueAccessToken"); any other segment may be an id (a user id in a Cosmos document URL, an
# ACS identity, a thread or room id) and is replaced.
_FIXED_SEGMENT = re.compile(r":?[A-Za-z]{1,40}")
_URL_ATTRIBUTES = ("url.full", "http.url")


def safe_url(url: str) -> str:
    """`url` with its query dropped and every path segment that is not a fixed word replaced."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    segments = [
        seg if not seg or _FIXED_SEGMENT.fullmatch(seg) else "{id}" for seg in parts.path.split("/")
    ]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"


def attach(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Make spans and counters real, on these providers (default: the process's global ones).
    Called by `telemetry_setup`, which chooses and configures the providers."""
    global _tracer
    from opentelemetry import metrics, trace

    with _lock:
        _tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("switchboard")
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("switchboard")
    for counter in COUNTERS:
        counter._instrument = meter.create_counter(
            counter.name, unit=counter.unit, description=counter.description
        )

    def gauge(key: str) -> Callable[[Any], list[Any]]:
        def observe(options: Any) -> list[Any]:
            return [metrics.Observation(_backlog[key])]

        return observe

    meter.create_observable_gauge(
        BACKLOG_GAUGES[0],
        callbacks=[gauge("oldest_age")],
        unit="s",
        description="age of the oldest due reaction item",
    )
    meter.create_observable_gauge(
        BACKLOG_GAUGES[1],
        callbacks=[gauge("parked")],
        unit="{item}",
        description="reaction items parked now",
    )


def detach() -> None:
    """Back to off: no spans, no-op counters (tests)."""
    global _tracer
    with _lock:
        _tracer = None
        for counter in COUNTERS:
            counter._instrument = None
