"""The floor figures the benchmark sets Switchboard's beside (see bench/floor_app.py).

- `prepare`: keys, database and an app token for the floor app, made once (as on a restart).
- `floor_cold_start`: import of the floor app + its first answer, in fresh processes.
- `floor_steady_state`: the floor work (verify, read, sign) in a loop, per request.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

FLOOR_USER = "floor-user"

FLOOR_COLD_PROBE = """
import asyncio, sys, time
t = time.perf_counter()
import azure.functions as func
import bench.floor_app as floor_app
handler = next(
    f.get_user_function() for f in floor_app.app.get_functions()
    if f.get_function_name() == "issue_token"
)
req = func.HttpRequest(method="POST", url="http://localhost/api/token",
                       headers={"authorization": "Bearer " + sys.argv[1]}, body=b"")
resp = asyncio.run(handler(req))
assert resp.status_code == 200, resp.status_code
print(time.perf_counter() - t)
"""


def prepare(data_dir: Path) -> str:
    """Write the floor's keys and database under `data_dir`; return an app token for it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (data_dir / "app-rsa.pub.pem").write_bytes(
        app_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (data_dir / "acs-ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with sqlite3.connect(data_dir / "floor.sqlite") as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        db.execute(
            "INSERT OR REPLACE INTO users VALUES (?, ?)",
            (FLOOR_USER, json.dumps({"acsId": "8:acs:floor_known"})),
        )
    db.close()
    now = int(time.time())
    return jwt.encode(
        {"iss": "floor", "aud": "floor", "sub": FLOOR_USER, "iat": now, "exp": now + 86400},
        app_key,
        algorithm="RS256",
    )


def floor_cold_start(data_dir: Path, env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    """Seconds from the floor app's import to its first answer, one fresh process per run."""
    token = prepare(data_dir)
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FLOOR_COLD_PROBE, token],
            cwd=cwd,
            env={**env, "FLOOR_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(float(out.split()[-1]))
    return samples


async def floor_steady_state(data_dir: Path, iterations: int) -> float:
    """Median seconds per request of the floor app's handler, awaited in a loop as
    `handler_time` awaits Switchboard's (same request, same warm-up)."""
    import azure.functions as func

    import bench.floor_app as floor_app

    token = prepare(data_dir)
    floor_app._state = floor_app.FloorState.load(data_dir)
    handler = floor_app.issue_token
    samples: list[int] = []
    for i in range(iterations + 200):
        req = func.HttpRequest(
            method="POST",
            url="http://localhost/api/token",
            headers={"authorization": f"Bearer {token}"},
            body=b'{"scopes": ["chat", "voip"], "expiresInMinutes": 60}',
        )
        started = time.perf_counter_ns()
        resp = await handler(req)
        elapsed = time.perf_counter_ns() - started
        assert resp.status_code == 200
        if i >= 200:
            samples.append(elapsed)
    floor_app._state.db.close()
    floor_app._state = None
    return statistics.median(samples) / 1e9
