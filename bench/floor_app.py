"""The FLOOR for `POST /api/token`: a bare azure.functions app doing only the work any token
endpoint must do — verify an RS256 app token, one SQLite primary-key read, one ES256 sign —
with PyJWT, cryptography and sqlite3 and nothing of Switchboard.

Its keys and database are made beforehand by `bench.floor.prepare` (a restart, not a first
install), under the directory named by FLOOR_DATA_DIR; the app loads them on first request, as
Switchboard builds its runtime on first request.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import jwt
from cryptography.hazmat.primitives import serialization

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

ISSUER = "floor"
AUDIENCE = "floor"


@dataclass
class FloorState:
    public_key: Any
    signing_key: Any
    db: sqlite3.Connection

    @classmethod
    def load(cls, data_dir: Path) -> FloorState:
        public_key = serialization.load_pem_public_key((data_dir / "app-rsa.pub.pem").read_bytes())
        signing_key = serialization.load_pem_private_key(
            (data_dir / "acs-ec.pem").read_bytes(), password=None
        )
        db = sqlite3.connect(data_dir / "floor.sqlite", isolation_level=None)
        return cls(public_key, signing_key, db)

    def issue(self, authorization: str) -> str:
        """The floor work of one token request: verify, read, sign."""
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            self.public_key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
        )
        row = self.db.execute("SELECT doc FROM users WHERE id = ?", (claims["sub"],)).fetchone()
        user = json.loads(row[0]) if row else {"acsId": f"8:acs:floor_{uuid.uuid4()}"}
        now = int(time.time())
        return jwt.encode(
            {"sub": user["acsId"], "acsScope": "chat,voip", "iat": now, "exp": now + 3600},
            self.signing_key,
            algorithm="ES256",
        )


_state: FloorState | None = None


async def issue_token(req: func.HttpRequest) -> func.HttpResponse:
    global _state
    if _state is None:
        _state = FloorState.load(Path(os.environ["FLOOR_DATA_DIR"]))
    token = _state.issue(req.headers.get("authorization", ""))
    return func.HttpResponse(json.dumps({"token": token}), mimetype="application/json")


# Registered without rebinding the name, so the benchmark can await the plain coroutine too.
app.route(route="token", methods=["POST"])(issue_token)
