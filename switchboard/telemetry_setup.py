"""Turning telemetry on: the OpenTelemetry providers and exporters `SWITCHBOARD_TELEMETRY` asks
for, the Azure SDKs' own tracing, and a span processor that keeps ids out of URLs.

Composition-level (the runtime calls `configure` once; tests call `install`): services and the
route decorator see only `switchboard.telemetry`, which imports no SDK.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from switchboard import telemetry
from switchboard.telemetry import Mode, safe_url

log = logging.getLogger("switchboard.telemetry")

_URL_ATTRIBUTES = ("url.full", "http.url")
_lock = threading.Lock()
_configured: list[Mode] = []
_added_processors: set[int] = set()


def _safe_urls() -> Any:
    """A span processor that rewrites the Azure SDKs' URL attributes: their paths name documents,
    identities and threads (user ids, ACS ids), which no attribute may carry. Built on first use
    (OpenTelemetry's SDK is imported only when telemetry is on)."""
    from opentelemetry.sdk.trace import SpanProcessor

    class SafeUrls(SpanProcessor):
        # The Azure SDKs set a span's URL as it ends, after the last moment OpenTelemetry lets
        # a processor write attributes; so the finished span's attributes are rewritten in
        # place, before the exporters' processors (added after this one) see it.
        def on_end(self, span: Any) -> None:
            attributes = getattr(span, "_attributes", None)
            stored = getattr(attributes, "_dict", None)
            if not isinstance(stored, dict):
                return
            for key in _URL_ATTRIBUTES:
                value = stored.get(key)
                if isinstance(value, str):
                    stored[key] = safe_url(value)

    return SafeUrls()


def configure(mode: Mode, *, managed_identity_client_id: str | None = None) -> None:
    """Turn telemetry on in `mode` (once per process; "off" changes nothing)."""
    if mode == "off":
        return
    with _lock:
        if _configured:
            return
        if mode == "azuremonitor":
            _configure_azure_monitor(managed_identity_client_id)
        else:
            _configure_sdk(mode)
        _configured.append(mode)
    log.info("telemetry on: %s", mode)


def _configure_azure_monitor(client_id: str | None) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    # Entra authentication to Application Insights, as the Bicep grants the identity
    # Monitoring Metrics Publisher (APPLICATIONINSIGHTS_AUTHENTICATION_STRING is the host's).
    configure_azure_monitor(
        credential=ManagedIdentityCredential(client_id=client_id),
        logger_name="switchboard",
        span_processors=[_safe_urls()],
        instrumentation_options={
            # The distro would also patch web frameworks and HTTP clients this app does not use.
            "django": {"enabled": False},
            "fastapi": {"enabled": False},
            "flask": {"enabled": False},
            "psycopg2": {"enabled": False},
        },
    )
    telemetry.attach()


def _configure_sdk(mode: Mode) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": "switchboard"})
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter: Any = OTLPSpanExporter()
        metric_exporter: Any = OTLPMetricExporter()
    else:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # On stderr, beside the log lines; stdout stays the program's own.
        span_exporter = ConsoleSpanExporter(out=sys.stderr)
        metric_exporter = ConsoleMetricExporter(out=sys.stderr)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(_safe_urls())
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(
        MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(metric_exporter)]
        )
    )
    _trace_azure_sdks()
    telemetry.attach()


def install(tracer_provider: Any, meter_provider: Any) -> None:
    """Use these providers (tests: in-memory exporters), as `configure` would its own.

    The tracer provider becomes the process's global one, where the Azure SDKs' tracing plugin
    looks for it; OpenTelemetry lets the global be set once per process, so a later call keeps
    the first provider (tests add their exporters with `add_span_processor`)."""
    from opentelemetry import trace

    if not _added_processors:
        tracer_provider.add_span_processor(_safe_urls())
        trace.set_tracer_provider(tracer_provider)
        _added_processors.add(-1)
    telemetry.attach(trace.get_tracer_provider(), meter_provider)
    _trace_azure_sdks()


def add_span_processor(processor: Any) -> None:
    """Add an exporter's processor after the URL scrubber (tests: an in-memory exporter)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    added: set[int] = _added_processors
    if id(processor) not in added:
        provider.add_span_processor(processor)  # type: ignore[attr-defined]
        added.add(id(processor))


def _trace_azure_sdks() -> None:
    # The Azure SDKs' own spans (Cosmos, ACS, SMS, chat, rooms, hub calls), through azure-core's
    # OpenTelemetry plugin; the Azure Monitor distro does the same for itself.
    from azure.core.settings import settings

    settings.tracing_implementation = "opentelemetry"


def reset() -> None:
    """Back to off (tests): no spans, no-op counters, the Azure SDKs untraced."""
    telemetry.detach()
    if "azure.core.settings" in sys.modules:
        from azure.core.settings import settings

        settings.tracing_implementation = None
