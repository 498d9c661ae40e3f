"""What telemetry costs: cold start (import + a new user's first token, embedded) with
SWITCHBOARD_TELEMETRY off — the default, which must stay where it was — and on (console exporter:
the OpenTelemetry SDK, its providers and the Azure SDKs' tracing plugin, without a network), in
fresh processes, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.cold_start import first_token_ms


def run(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    off = first_token_ms("embedded", {**env, "SWITCHBOARD_TELEMETRY": "off"}, cwd)
    # The console exporter writes to stderr, so the probe's stdout is still its one figure.
    on = first_token_ms("embedded", {**env, "SWITCHBOARD_TELEMETRY": "console"}, cwd)
    return {"off_ms": round(off, 1), "on_ms": round(on, 1), "cost_ms": round(on - off, 1)}


def report(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| cold start, embedded: import + first token | ms |",
            "|---|---|",
            f"| SWITCHBOARD_TELEMETRY=off (default) | {r['off_ms']} |",
            f"| SWITCHBOARD_TELEMETRY=console (OpenTelemetry SDK on) | {r['on_ms']} |",
            f"| what turning telemetry on costs | {r['cost_ms']} |",
        ]
    )
