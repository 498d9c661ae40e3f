"""The devserver under load: a mixed load beside its trivial route, and memory over time.

1. Mixed load (SQLite): CONCURRENCY keep-alive connections, each cycling through the hot
   requests of a signed-in user — `POST /api/token`, `GET /api/friends` (a page of 100),
   `GET /api/clubs/{id}/call`, `GET /api/threads` — beside the same connections on
   `GET /api/health` (the devserver's own floor: routing, one store ping, a JSON answer), in
   alternating phases of one run. The figure is the ratio of the two request rates.
2. Memory (SQLite and the Cosmos-protocol test server): the server's resident set size after
   each of MEMORY_PHASES phases of the mixed load, so a leak shows as a line that keeps rising
   and a bounded cache as one that flattens.

The load generator runs on the same two cores as the server, so rates are lower bounds; the
ratio is what the docs quote. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.clubs import COSMOS_DEVSERVER, _env, _free_port, _start_cosmos, _wait

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
PHASE_SECONDS = 3.0
PHASES = 3  # alternating mixed / health phases for the ratio
MEMORY_PHASES = 8
MEMORY_PHASE_SECONDS = 4.0
FRIENDS = 300
THREADS = 20
GID = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"


def _rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _request(method: str, path: str, token: str | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    return (head + "\r\n").encode()


async def _drive(port: int, requests: list[bytes], seconds: float) -> dict[str, float]:
    """CONCURRENCY connections sending `requests` round-robin, back to back, for `seconds`."""
    statuses = Counter[int]()

    async def connection(offset: int, stop_at: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = offset
        try:
            while time.monotonic() < stop_at:
                writer.write(requests[n % len(requests)])
                n += 1
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                statuses[int(status_line.split()[1])] += 1
        finally:
            writer.close()

    began = time.monotonic()
    await asyncio.gather(*(connection(i, began + seconds) for i in range(CONCURRENCY)))
    elapsed = time.monotonic() - began
    return {
        "requests_per_second": round(sum(statuses.values()) / elapsed, 1),
        "non_2xx": sum(n for status, n in statuses.items() if status >= 300),
    }


def _seed(base: str, users: int = 4) -> tuple[list[str], str]:
    """Users who are friends, a club with its call, a few threads; the tokens and the club."""
    with httpx.Client(base_url=base, timeout=30) as http:
        tokens = []
        for n in range(users):
            who = {"userId": f"load-{n}", "displayName": f"L{n}"}
            login = http.post("/api/dev/login", json=who)
            tokens.append(login.json()["accessToken"])
        auth = [{"authorization": f"Bearer {t}"} for t in tokens]
        for headers in auth:
            http.post("/api/token", headers=headers).raise_for_status()
        club = http.post(
            "/api/clubs", headers=auth[0], json={"name": "Load", "visibility": "open"}
        ).json()["clubId"]
        for headers in auth[1:]:
            http.post(f"/api/clubs/{club}/join", headers=headers).raise_for_status()
        http.put(
            f"/api/clubs/{club}/call", headers=auth[0], json={"groupCallId": GID}
        ).raise_for_status()
        for n in range(1, users):  # everyone is user 0's friend
            http.put(f"/api/friends/load-{n}", headers=auth[0]).raise_for_status()
            http.put("/api/friends/load-0", headers=auth[n]).raise_for_status()
        return tokens, club


def _mixed(tokens: list[str], club: str) -> list[bytes]:
    requests = []
    for token in tokens:
        requests += [
            _request("POST", "/api/token", token),
            _request("GET", "/api/friends?status=accepted", token),
            _request("GET", f"/api/clubs/{club}/call", token),
            _request("GET", "/api/threads", token),
        ]
    return requests


def _start(store: str, data: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[int, int]:
    """The devserver on `store`; (its port, its pid)."""
    port = _free_port()
    if store == "sqlite":
        cmd = [sys.executable, "-m", "switchboard.devserver", "--port", str(port)]
    else:
        endpoint, key = _start_cosmos(data, procs)
        database = f"bench-{uuid.uuid4().hex[:8]}"
        from switchboard.adapters.cosmos_store import create_database_and_containers
        from tests.contract.conftest import TEST_CLIENT_OPTIONS

        asyncio.run(create_database_and_containers(endpoint, database, key, **TEST_CLIENT_OPTIONS))
        cmd = [sys.executable, "-c", COSMOS_DEVSERVER, endpoint, database, key, str(port)]
    procs.append(
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=_env(data / "data"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    _wait(f"http://127.0.0.1:{port}", procs[-1])
    return port, procs[-1].pid


def mixed_beside_trivial() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            port, _ = _start("sqlite", Path(tmp), procs)
            tokens, club = _seed(f"http://127.0.0.1:{port}")
            mixed, health = _mixed(tokens, club), [_request("GET", "/api/health", None)]
            asyncio.run(_drive(port, mixed + health, 1.0))  # warm-up
            rates: dict[str, list[float]] = {"mixed": [], "health": []}
            non_2xx = 0
            for _ in range(PHASES):
                for name, requests in (("mixed", mixed), ("health", health)):
                    result = asyncio.run(_drive(port, requests, PHASE_SECONDS))
                    rates[name].append(result["requests_per_second"])
                    non_2xx += int(result["non_2xx"])
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)
    mixed_rps = sorted(rates["mixed"])[PHASES // 2]
    health_rps = sorted(rates["health"])[PHASES // 2]
    return {
        "mixed_rps": mixed_rps,
        "health_rps": health_rps,
        "ratio": round(mixed_rps / health_rps, 2),
        "non_2xx": non_2xx,
    }


def memory(store: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            port, pid = _start(store, Path(tmp), procs)
            tokens, club = _seed(f"http://127.0.0.1:{port}")
            samples = [_rss_mib(pid)]
            served = 0
            requests = _mixed(tokens, club)
            for _ in range(MEMORY_PHASES):
                result = asyncio.run(_drive(port, requests, MEMORY_PHASE_SECONDS))
                served += int(result["requests_per_second"] * MEMORY_PHASE_SECONDS)
                samples.append(_rss_mib(pid))
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)
    return {"rss_mib": samples, "requests": served}


def run() -> dict[str, Any]:
    print("devserver: mixed load beside health, memory under load ...", file=sys.stderr)
    return {
        "mixed": mixed_beside_trivial(),
        "memory": {store: memory(store) for store in ("sqlite", "cosmos")},
    }


def report_lines(r: dict[str, Any]) -> list[str]:
    m = r["mixed"]
    lines = [
        f"| devserver (SQLite), {CONCURRENCY} connections, median of {PHASES} alternating phases "
        "| req/s | ratio |",
        "|---|---|---|",
        f"| GET /api/health (its trivial route) | {m['health_rps']} | 1 |",
        "| mixed: token, friends page, club call read, threads list"
        f" | {m['mixed_rps']} | {m['ratio']} |",
        f"| non-2xx answers in all phases | {m['non_2xx']} | |",
        "",
        f"| devserver memory under the mixed load (RSS MiB: start, then after each "
        f"{MEMORY_PHASE_SECONDS:.0f} s phase) | samples | requests |",
        "|---|---|---|",
    ]
    for store, d in r["memory"].items():
        name = "SQLite" if store == "sqlite" else "Cosmos test server"
        samples = " → ".join(str(s) for s in d["rss_mib"])
        lines.append(f"| {name} | {samples} | {d['requests']:,} |")
    return lines


def main() -> None:
    print("\n".join(report_lines(run())))


if __name__ == "__main__":
    if os.environ.get("BENCH_MEMORY_ONLY"):
        print(memory(os.environ["BENCH_MEMORY_ONLY"]))
    else:
        main()
