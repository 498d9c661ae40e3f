"""Switchboard's benchmark (`make bench`): the figures of docs/performance.md.

1. Import time of `function_app` (embedded mode) beside a bare azure.functions app with one route:
   fresh processes, median of N; plus which heavy SDKs the import pulled in (should be none).
2. Store and ACS operations per request on the hot paths, counted by wrapping the ports.
3. Handler time per `POST /api/token` (known user), in process via func.HttpRequest: with
   zero-latency ports (what the handler itself costs: auth, parse, policy, shape) and with the
   embedded adapters (SQLite + local ACS issuer).
4. Devserver throughput at 32 concurrent clients: `POST /api/token` beside `GET /api/health`.
   The load generator runs on the same 2 cores as the server, so these are lower bounds.
5. Steady state: (3)'s embedded figure beside the FLOOR (bench/floor_app.py: verify an RS256
   app token, one SQLite read, one ES256 sign) in the same loop, as a ratio.
6. Reactions (bench/reactions.py): erase, club delete and rename at scale: the request's store
   operations beside the background work and its time to converge.
7. Cold start (bench/cold_start.py): import + a new user's first `POST /api/token` in fresh
   processes, embedded and Azure mode (SDKs over zero-latency transports), beside the floor
   app's import + first answer, as ratios.

Nothing here is asserted: figures change with the machine; counts are pinned by the tests instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx

from bench import clubs, growth, load, push, reactions, steady
from bench import telemetry as telemetry_bench
from bench.chat import chat_bench
from bench.cold_start import cold_start
from bench.cold_start import report_lines as cold_start_report_lines
from bench.floor import floor_steady_state
from bench.friends import friends_bench
from bench.friends import report_lines as friends_report_lines
from bench.meetings import meetings_bench
from bench.meetings import report_lines as meetings_report_lines
from bench.phone import phone_report
from bench.webclient import report as webclient_report

ROOT = Path(__file__).resolve().parent.parent
IMPORT_RUNS = 15
HANDLER_ITERATIONS = 3000
LOAD_SECONDS = 4.0
CONCURRENCY = 32
HEAVY_MODULES = ("azure.cosmos", "azure.communication", "azure.identity", "msgraph", "aiohttp")


# One bench user issues thousands of tokens: the budget is charged as always (its read and write
# are in every figure) but set out of reach of the loop.
BENCH_TOKEN_BUDGET = "999999/1s"  # noqa: S105 (a rate, not a secret)


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR"}
    return {**{k: v for k, v in os.environ.items() if k in keep}, **extra}


def import_time() -> dict[str, Any]:
    probe = (
        "import sys, time; t = time.perf_counter(); import {module}; "
        "d = time.perf_counter() - t; "
        "print(d, ','.join(m for m in {heavy!r} if m in sys.modules))"
    )

    def measure(module: str) -> tuple[float, str]:
        samples: list[float] = []
        loaded = ""
        for _ in range(IMPORT_RUNS):
            out = subprocess.run(
                [sys.executable, "-c", probe.format(module=module, heavy=HEAVY_MODULES)],
                cwd=ROOT,
                env=_clean_env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            samples.append(float(out[0]))
            loaded = out[1] if len(out) > 1 else ""
        return statistics.median(samples) * 1000, loaded

    app_ms, app_loaded = measure("function_app")
    bare_ms, _ = measure("bench.bare_app")
    return {
        "function_app_ms": round(app_ms, 1),
        "bare_app_ms": round(bare_ms, 1),
        "ratio": round(app_ms / bare_ms, 2),
        "heavy_sdks_imported": app_loaded or "none",
        "first_token_ms": round(cold_first_token(), 1),
        "runs": IMPORT_RUNS,
    }


COLD_START_PROBE = """
import asyncio, sys, time
t = time.perf_counter()
import azure.functions as func
import function_app
from switchboard.runtime import get_runtime
handler = next(
    f.get_user_function() for f in function_app.app.get_functions()
    if f.get_function_name() == "issue_token"
)
token, _ = get_runtime().adapters.dev_issuer.issue(sys.argv[1], None)
req = func.HttpRequest(method="POST", url="http://localhost/api/token",
                       headers={"authorization": "Bearer " + token}, body=b"")
resp = asyncio.run(handler(req))
assert resp.status_code == 200, resp.status_code
print(time.perf_counter() - t)
"""


def cold_first_token() -> float:
    """Import + runtime build + a new user's first POST /api/token, in a fresh process (ms).

    Deferred imports move cost from import to the first request; this shows the sum. The data
    dir is made once beforehand, as on a restart (generating the dev keys is not a cold start).
    """
    samples = []
    with tempfile.TemporaryDirectory() as data:
        for run in range(6):
            out = subprocess.run(
                [sys.executable, "-c", COLD_START_PROBE, f"cold-{run}"],
                cwd=ROOT,
                env=_clean_env(SWITCHBOARD_DATA_DIR=data),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if run:  # run 0 made the keys
                samples.append(float(out.split()[-1]))
    return statistics.median(samples) * 1000


class Harness:
    """Drives the registered handlers in process, as the Functions host does."""

    def __init__(self) -> None:
        # One route table per process: azure.functions allows get_functions() only once.
        from tests.conftest import app_server

        self.server = app_server()

    def handler(self, method: str, path: str) -> Any:
        for fn in self.server.http:
            if fn.pattern.match(path) and method in fn.methods:
                return fn.handler
        raise LookupError(path)

    @staticmethod
    def request(method: str, path: str, token: str, body: bytes = b"") -> func.HttpRequest:
        headers = {"authorization": f"Bearer {token}"}
        if body:
            headers["content-type"] = "application/json"
        return func.HttpRequest(
            method=method, url=f"http://localhost{path}", headers=headers, body=body
        )


def _runtime(data_dir: Path, store: Any, identity_provider: Any) -> Any:
    from switchboard.dev.issuer import DevTokenIssuer
    from switchboard.runtime import Adapters, Runtime, build_authenticator, set_runtime
    from switchboard.settings import Settings

    settings = Settings.from_environ(
        {"SWITCHBOARD_DATA_DIR": str(data_dir), "TOKEN_BUDGET": BENCH_TOKEN_BUDGET}
    )
    issuer = DevTokenIssuer(data_dir)
    adapters = Adapters(
        store=store,
        identity_provider=identity_provider,
        authenticator=build_authenticator(settings, issuer),
        dev_issuer=issuer,
    )
    rt = Runtime(settings, adapters)
    set_runtime(rt)
    return rt


async def operation_counts(harness: Harness, data_dir: Path) -> dict[str, dict[str, int]]:
    from switchboard.adapters.acs_local import LocalIdentityIssuer
    from switchboard.adapters.sqlite_store import SqliteStore
    from tests.proxies import spy, spy_of

    rt = _runtime(
        data_dir, spy(SqliteStore(data_dir / "counts.sqlite")), spy(LocalIdentityIssuer(data_dir))
    )
    store, acs = spy_of(rt.adapters.store), spy_of(rt.adapters.identity_provider)
    token, _ = rt.adapters.dev_issuer.issue("bench-counts", "Bench")
    results: dict[str, dict[str, int]] = {}
    for label, method, path in [
        ("POST /api/token (new user)", "POST", "/api/token"),
        ("POST /api/token (known user)", "POST", "/api/token"),
        ("GET /api/me", "GET", "/api/me"),
        ("POST /api/token/revoke", "POST", "/api/token/revoke"),
        ("DELETE /api/me", "DELETE", "/api/me"),
    ]:
        store.calls.clear()
        acs.calls.clear()
        resp = await harness.handler(method, path)(harness.request(method, path, token))
        assert resp.status_code < 300, (label, resp.status_code)
        results[label] = {
            "store": sum(store.calls.values()),
            "acs": sum(acs.calls.values()),
            **{f"store.{k}": v for k, v in sorted(store.calls.items())},
            **{f"acs.{k}": v for k, v in sorted(acs.calls.items())},
        }
    await rt.close()
    return results


async def handler_time(harness: Harness, data_dir: Path, adapters: str) -> dict[str, float]:
    if adapters == "zero-latency":
        from bench.zero_latency import InstantIdentityProvider, InstantStore

        rt = _runtime(data_dir, InstantStore(), InstantIdentityProvider())
    else:
        from switchboard.adapters.acs_local import LocalIdentityIssuer
        from switchboard.adapters.sqlite_store import SqliteStore

        store = SqliteStore(data_dir / "time.sqlite")
        rt = _runtime(data_dir, store, LocalIdentityIssuer(data_dir))
    token, _ = rt.adapters.dev_issuer.issue("bench-time", "Bench")
    handler = harness.handler("POST", "/api/token")
    body = b'{"scopes": ["chat", "voip"], "expiresInMinutes": 60}'
    samples: list[int] = []
    for i in range(HANDLER_ITERATIONS + 200):
        req = harness.request("POST", "/api/token", token, body)
        started = time.perf_counter_ns()
        resp = await handler(req)
        elapsed = time.perf_counter_ns() - started
        assert resp.status_code == 200
        if i >= 200:  # warm-up: first identity, caches, key loading
            samples.append(elapsed)
    await rt.close()
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples) / 1e6, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99)] / 1e6, 3),
        "iterations": HANDLER_ITERATIONS,
    }


async def _load(port: int, method: str, path: str, headers: dict[str, str]) -> dict[str, float]:
    """CONCURRENCY keep-alive connections, each sending requests back to back for LOAD_SECONDS.

    A raw HTTP/1.1 client on asyncio streams: an HTTP client library spends more CPU per request
    than the server does, and it shares the server's two cores, so it would measure itself.
    """
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
    request = (head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    statuses = Counter[int]()
    latencies: list[float] = []

    async def connection(stop_at: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses[int(status_line.split()[1])] += 1
        finally:
            writer.close()

    await connection(time.monotonic() + 0.5)  # warm-up
    latencies.clear()
    statuses.clear()
    began = time.monotonic()
    await asyncio.gather(*(connection(began + LOAD_SECONDS) for _ in range(CONCURRENCY)))
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "requests_per_second": round(sum(statuses.values()) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "non_2xx": sum(n for status, n in statuses.items() if status >= 300),
    }


def devserver_throughput(data_dir: Path) -> dict[str, dict[str, float]]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.devserver", "--port", str(port)],
        cwd=ROOT,
        env=_clean_env(
            SWITCHBOARD_DATA_DIR=str(data_dir / "devserver"), TOKEN_BUDGET=BENCH_TOKEN_BUDGET
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        login = httpx.post(f"{base}/api/dev/login", json={"userId": "bench-load"}).json()
        auth = {"authorization": f"Bearer {login['accessToken']}"}
        return {
            "POST /api/token": asyncio.run(_load(port, "POST", "/api/token", auth)),
            "GET /api/health": asyncio.run(_load(port, "GET", "/api/health", {})),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def steady_state(embedded: dict[str, float], floor_dir: Path) -> dict[str, float]:
    """Switchboard's `POST /api/token` (known user, embedded) beside the floor work in a loop."""
    floor_ms = asyncio.run(floor_steady_state(floor_dir, HANDLER_ITERATIONS)) * 1000
    return {
        "floor_ms": round(floor_ms, 3),
        "embedded_ms": embedded["median_ms"],
        "ratio": round(embedded["median_ms"] / floor_ms, 2),
    }


def machine() -> str:
    """The machine the figures come from: CPU model, cores, and its load when the run began
    (other work on the cores slows both sides of every ratio alike, but not every figure)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load_avg = "n/a"
    with contextlib.suppress(OSError):
        load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{model}, {os.cpu_count()} CPUs, load average {load_avg} at the start"


def main() -> None:
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        data = Path(tmp)
        print("import time ...", file=sys.stderr)
        results["import"] = import_time()
        harness = Harness()
        print("operation counts ...", file=sys.stderr)
        results["operations"] = asyncio.run(operation_counts(harness, data / "counts"))
        print("handler time ...", file=sys.stderr)
        results["handler_zero_latency"] = asyncio.run(
            handler_time(harness, data / "zero", "zero-latency")
        )
        results["handler_embedded"] = asyncio.run(handler_time(harness, data / "emb", "embedded"))
        results["steady_state"] = steady_state(results["handler_embedded"], data / "floor")
        print("cold start (embedded, azure, floor) ...", file=sys.stderr)
        results["cold_start"] = cold_start(_clean_env(), ROOT)
        print("devserver throughput ...", file=sys.stderr)
        results["devserver"] = devserver_throughput(data)
        print("meetings ...", file=sys.stderr)
        results["meetings"] = meetings_bench(ROOT, _clean_env())
        print("friends ...", file=sys.stderr)
        results["friends"] = friends_bench()
        results["chat"] = chat_bench(data / "chat")
    results["clubs"] = clubs.run()
    results["push"] = push.run()
    results["growth"] = growth.run()
    results["steady_routes"] = steady.run()
    results["load"] = load.run()
    results["reactions"] = reactions.run()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(report(results))
    print()
    print("\n".join(growth.report_lines(results["growth"], results["push"]["club_calls"])))
    print()
    print("\n".join(steady.report_lines(results["steady_routes"])))
    print()
    print("\n".join(load.report_lines(results["load"])))
    print(clubs.report(results["clubs"]))
    print(reactions.report(results["reactions"]))
    print(phone_report(Path(tempfile.mkdtemp(prefix="switchboard-bench-phone-"))))
    print(push.report(results["push"]))
    print(webclient_report())
    print(telemetry_bench.report(telemetry_bench.run(_clean_env(), ROOT)))


def report(r: dict[str, Any]) -> str:
    imp = r["import"]
    lines = [
        f"Python {r['python']}, {r['machine']}",
        "",
        "| import (fresh process, median of {}) | ms |".format(imp["runs"]),
        "|---|---|",
        f"| `import function_app` (embedded) | {imp['function_app_ms']} |",
        f"| bare azure.functions app, one route | {imp['bare_app_ms']} |",
        f"| ratio | {imp['ratio']}x |",
        f"| heavy SDKs imported by function_app | {imp['heavy_sdks_imported']} |",
        f"| cold start to a new user's first token (import + first request, median of 5)"
        f" | {imp['first_token_ms']} |",
        "",
        "| operations per request | store | ACS | detail |",
        "|---|---|---|---|",
    ]
    for label, counts in r["operations"].items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if "." in k)
        lines.append(f"| {label} | {counts['store']} | {counts['acs']} | {detail} |")
    z, e = r["handler_zero_latency"], r["handler_embedded"]
    lines += [
        "",
        "| `POST /api/token` handler time (known user) | median ms | p99 ms |",
        "|---|---|---|",
        f"| zero-latency ports | {z['median_ms']} | {z['p99_ms']} |",
        f"| embedded adapters (SQLite + local ACS issuer) | {e['median_ms']} | {e['p99_ms']} |",
        "",
        *cold_start_report_lines(r["cold_start"], r["steady_state"]),
        "",
        f"| devserver, {CONCURRENCY} concurrent clients | req/s | ratio to health | p50 ms "
        "| p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    health_rps = r["devserver"]["GET /api/health"]["requests_per_second"]
    for label, d in r["devserver"].items():
        lines.append(
            f"| {label} | {d['requests_per_second']} "
            f"| {round(d['requests_per_second'] / health_rps, 2)} | {d['p50_ms']} "
            f"| {d['p99_ms']} | {d['non_2xx']} |"
        )
    lines += ["", *meetings_report_lines(r["meetings"])]
    lines += ["", *friends_report_lines(r["friends"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
