"""The local ACS identity issuer: the embedded stand-in for the Azure Communication Services
Identity service (the `IdentityProvider` port), used when neither `ACS_ENDPOINT` nor
`ACS_CONNECTION_STRING` is set.

It is a real, persistent product for development, not a mock: identities look like ACS ones
(`8:acs:<resourceId>_<uuid>`), tokens are JWTs shaped as the ACS client SDKs read them (`sub`,
`skypeid`, `acsScope` comma-separated as in "chat,voip", `resourceId`, `resourceLocation`,
`iat`, `exp`), and everything lives under the data dir:

- `acs-local.sqlite` — identities, their deleted flag and their token generation, plus the
  resource id, generated once per data dir;
- `acs-local-signing-key.pem` — the P-256 private key the tokens are signed with (mode 0600).

So a restarted server (or a second process on the same data dir) knows the same identities and
accepts the tokens issued before. `verify_token` is how tests and developers prove that revoke
and delete are honoured; ACS itself does that inside its data plane.

Why ES256 and not RS256: the app benchmarks handler time with this issuer, and on the reference
machine an RS256 (2048-bit) signature costs ~580 µs against ~85 µs for ES256, so ES256 keeps a
token issue well under a millisecond. Verification is a little slower with ES256 (~230 µs vs
~140 µs), but only tests and developers verify.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from switchboard.acs import KNOWN_SCOPES, TEAMS_TOKEN_AUDIENCE, TEAMS_TOKEN_SCOPES
from switchboard.keyfiles import load_or_create_private_key
from switchboard.ports import (
    IdentityNotFound,
    IssuedToken,
    TeamsTokenRejected,
)

DATABASE_FILE_NAME = "acs-local.sqlite"
SIGNING_KEY_FILE_NAME = "acs-local-signing-key.pem"
TOKEN_ISSUER = "switchboard-acs-local"  # noqa: S105 (an issuer name, not a secret)
SIGNING_ALGORITHM = "ES256"
# The region claim real ACS tokens carry (the resource's data location). The Calling SDK 1.x
# (1.46.1, parseTokenCredential) takes an ACS token's region from `resourceLocation` (`rgn` only
# for Teams users' tokens) and knows "unitedstates"; a local resource has no region, so it
# claims that default. tests/browser/test_identity.py has the real SDK accept the token.
RESOURCE_LOCATION = "unitedstates"
# The ACS client SDKs split `acsScope` on commas (the Calling SDK refuses a token whose split
# holds neither "voip" nor "voip.join"), so the claim is "chat,voip", never "chat voip".
SCOPE_SEPARATOR = ","

# What ACS accepts (CommunicationTokenScope, and expiresInMinutes in [60, 1440]); the local
# issuer refuses the same requests ACS would answer with 400, so no code path works only locally.
ACS_SCOPES = frozenset(KNOWN_SCOPES)
TEAMS_TOKEN_LIFETIME = timedelta(hours=1)
MIN_TOKEN_LIFETIME = timedelta(minutes=60)
MAX_TOKEN_LIFETIME = timedelta(minutes=1440)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    deleted_at REAL,
    generation INTEGER NOT NULL DEFAULT 0
);
"""


class LocalTokenRejected(Exception):
    """`verify_token` refused a token; the subclass says why. Messages never contain the token."""


class TokenInvalid(LocalTokenRejected):
    """Malformed, signed by another key, missing claims, or issued for another resource."""


class TokenExpired(LocalTokenRejected):
    """The token's `exp` has passed."""


class TokenRevoked(LocalTokenRejected):
    """`revoke_tokens` was called for the identity after this token was issued."""


class TokenIdentityDeleted(LocalTokenRejected):
    """The token's identity was deleted (or never existed in this data dir)."""


class LocalIdentityIssuer:
    """ACS-shaped identities and user access tokens, kept in SQLite under `data_dir`.

    Safe for many concurrent async callers (and for threads): every database operation is one
    primary-key statement done under a lock. They run on the calling thread on purpose — each
    takes tens of microseconds in WAL mode, less than an `asyncio.to_thread` hop would cost.
    Other processes on the same data dir are safe too (SQLite WAL + busy timeout).

    `clock` (seconds since the epoch) is injectable so tests can step past a token's expiry.
    """

    def __init__(
        self,
        data_dir: Path,
        resource_id: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = self._open_database(data_dir / DATABASE_FILE_NAME)
        try:
            self.resource_id = self._load_or_store_resource_id(resource_id)
            self._private_key = load_or_create_private_key(
                data_dir / SIGNING_KEY_FILE_NAME,
                ec.EllipticCurvePrivateKey,
                lambda: ec.generate_private_key(ec.SECP256R1()),
            )
        except BaseException:
            self._db.close()
            raise
        self._public_key = self._private_key.public_key()
        self._key_id = _key_id(self._public_key)

    # -- IdentityProvider ------------------------------------------------------------------

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        """A new identity and its first token; validates the request as ACS does first."""
        scope_claim = _scope_claim(scopes)
        _check_lifetime(expires_in)
        communication_user_id = f"8:acs:{self.resource_id}_{uuid.uuid4()}"
        with self._lock:
            self._db.execute(
                "INSERT INTO identities (id, created_at, generation) VALUES (?, ?, 0)",
                (communication_user_id, self._clock()),
            )
        token = self._sign(communication_user_id, scope_claim, expires_in, generation=0)
        return communication_user_id, token

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        """A fresh token (a new `jti` every call); IdentityNotFound if deleted or unknown."""
        scope_claim = _scope_claim(scopes)
        _check_lifetime(expires_in)
        row = self._identity_row(communication_user_id)
        if row is None or row[0] is not None:
            raise IdentityNotFound("the ACS identity does not exist (deleted or unknown)")
        return self._sign(communication_user_id, scope_claim, expires_in, generation=row[1])

    async def revoke_tokens(self, communication_user_id: str) -> None:
        """Bump the identity's generation: tokens carrying an older one no longer verify.

        A generation counter rather than an `iat` cut-off, because `iat` has one-second
        resolution and a token issued in the same second as the revoke must stay valid only if
        it was issued after it. Revoking a deleted or unknown identity is a no-op.
        """
        with self._lock:
            self._db.execute(
                "UPDATE identities SET generation = generation + 1"
                " WHERE id = ? AND deleted_at IS NULL",
                (communication_user_id,),
            )

    async def delete_user(self, communication_user_id: str) -> None:
        """Mark the identity deleted (its tokens die with it); idempotent.

        The row is kept, not removed, so an id is never handed out again and `verify_token`
        can say "deleted" rather than "invalid".
        """
        with self._lock:
            self._db.execute(
                "UPDATE identities SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                (self._clock(), communication_user_id),
            )

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        """A local Teams-user token (`8:orgid:<oid>`) for an Entra token of that user.

        Offline there is no Entra ID to check the token's signature against, so this checks
        everything else ACS checks, and says which check failed: the audience is ACS's, the
        token was issued to `client_id` (appid/azp) by the Entra tenant it names (`iss` of
        `tid`, v1 or v2 form), for `user_object_id`, with the delegated `Teams.ManageCalls` and
        `Teams.ManageChats` (`scp`), and is valid now (`nbf`, `exp`, a minute of skew). Like dev
        sign-in, it is a development stand-in and refuses to run in Azure (see Settings).
        """
        try:
            claims = jwt.decode(aad_token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, RecursionError):
            raise TeamsTokenRejected("not a JWT") from None
        now = self._clock()
        problem = _teams_token_problem(claims, client_id, user_object_id, now)
        if problem is not None:
            raise TeamsTokenRejected(problem)
        expires = claims["exp"]
        lifetime = min(TEAMS_TOKEN_LIFETIME, timedelta(seconds=int(expires - now)))
        scope_claim = SCOPE_SEPARATOR.join(("voip", "chat"))
        return self._sign(f"8:orgid:{user_object_id}", scope_claim, lifetime, generation=0)

    async def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # -- verification (tests and developers) -----------------------------------------------

    def verify_token(self, token: str) -> dict[str, Any]:
        """The token's claims if ACS would accept it now; otherwise a `LocalTokenRejected`.

        Checks, in order: signature and shape (TokenInvalid), expiry (TokenExpired), the
        identity still exists (TokenIdentityDeleted), no revoke since issue (TokenRevoked).
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=[SIGNING_ALGORITHM],
                issuer=TOKEN_ISSUER,
                # Time claims are checked below against the injectable clock, not PyJWT's own.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": [
                        "exp",
                        "iat",
                        "sub",
                        "skypeid",
                        "acsScope",
                        "resourceId",
                        "resourceLocation",
                        "gen",
                    ],
                },
            )
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(f"token rejected: {type(exc).__name__}") from None
        if claims["resourceId"] != self.resource_id:
            raise TokenInvalid("token rejected: issued for another ACS resource")
        if not set(claims["acsScope"].split(SCOPE_SEPARATOR)) <= ACS_SCOPES:
            # What the SDKs would misread (e.g. a space-separated claim) is not an ACS token.
            raise TokenInvalid("token rejected: acsScope is not a comma-separated scope list")
        if self._clock() >= claims["exp"]:
            raise TokenExpired("token rejected: expired")
        if claims["sub"].startswith("8:orgid:"):
            return claims  # a Teams user's token: Teams, not this issuer, owns that identity
        row = self._identity_row(claims["sub"])
        if row is None or row[0] is not None:
            raise TokenIdentityDeleted("token rejected: its identity was deleted")
        if claims["gen"] != row[1]:
            raise TokenRevoked("token rejected: revoked")
        return claims

    # -- internals ---------------------------------------------------------------------------

    def _sign(
        self, communication_user_id: str, scope_claim: str, expires_in: timedelta, generation: int
    ) -> IssuedToken:
        issued_at = int(self._clock())
        expires_at = issued_at + int(expires_in.total_seconds())
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": communication_user_id,
            # ACS tokens name the identity in `skypeid`: the id without its "8:" prefix.
            "skypeid": communication_user_id.removeprefix("8:"),
            "acsScope": scope_claim,
            "resourceId": self.resource_id,
            "resourceLocation": RESOURCE_LOCATION,
            "iat": issued_at,
            "exp": expires_at,
            "gen": generation,
            # Two tokens issued in the same second for the same identity still differ.
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(
            claims, self._private_key, algorithm=SIGNING_ALGORITHM, headers={"kid": self._key_id}
        )
        return IssuedToken(token=token, expires_on=datetime.fromtimestamp(expires_at, UTC))

    def _identity_row(self, communication_user_id: str) -> tuple[float | None, int] | None:
        """(deleted_at, generation) of the identity, or None when it is unknown."""
        with self._lock:
            row: tuple[float | None, int] | None = self._db.execute(
                "SELECT deleted_at, generation FROM identities WHERE id = ?",
                (communication_user_id,),
            ).fetchone()
        return row

    @staticmethod
    def _open_database(path: Path) -> sqlite3.Connection:
        # Autocommit (isolation_level=None): every statement is its own short transaction.
        # check_same_thread=False: the lock, not the thread, guards the connection.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses at most the last commits on power loss, never consistency,
        # and saves an fsync per write: the right trade for a development store.
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(_SCHEMA)
        return connection

    def _load_or_store_resource_id(self, requested: str | None) -> str:
        with self._lock:
            # INSERT OR IGNORE: when two processes start on a new data dir, the first one wins
            # and both then read the same id.
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('resource_id', ?)",
                (requested or str(uuid.uuid4()),),
            )
            (stored,) = self._db.execute(
                "SELECT value FROM meta WHERE key = 'resource_id'"
            ).fetchone()
        if requested is not None and requested != stored:
            raise ValueError(
                f"the data dir already belongs to local ACS resource {stored}, not {requested}"
            )
        return str(stored)


def _scope_claim(scopes: Sequence[str]) -> str:
    """The comma-separated `acsScope` claim; ValueError for what ACS would refuse."""
    if isinstance(scopes, str) or not scopes:
        raise ValueError("scopes must be a non-empty list of ACS scope names")
    unknown = sorted(set(scopes) - ACS_SCOPES)
    if unknown:
        raise ValueError(f"unknown ACS scopes: {', '.join(unknown)}")
    return SCOPE_SEPARATOR.join(dict.fromkeys(scopes))


def _check_lifetime(expires_in: timedelta) -> None:
    if not MIN_TOKEN_LIFETIME <= expires_in <= MAX_TOKEN_LIFETIME:
        raise ValueError("token lifetime must be between 60 and 1440 minutes, as in ACS")


def _key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A stable `kid`: a digest of the public key, so a token names the key that signed it."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:32]


__all__ = [
    "ACS_SCOPES",
    "RESOURCE_LOCATION",
    "LocalIdentityIssuer",
    "LocalTokenRejected",
    "TokenExpired",
    "TokenIdentityDeleted",
    "TokenInvalid",
    "TokenRevoked",
]


_TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CLOCK_SKEW_SECONDS = 60


def _teams_token_problem(
    claims: dict[str, Any], client_id: str, user_object_id: str, now: float
) -> str | None:
    """Which of ACS's checks an Entra token of a Teams user fails (None: it passes them all)."""
    tid = claims.get("tid")
    scopes = claims.get("scp")
    granted = set(scopes.split()) if isinstance(scopes, str) else set()
    issued_after = claims.get("nbf", claims.get("iat"))
    expires = claims.get("exp")
    checks = [
        (claims.get("aud") == TEAMS_TOKEN_AUDIENCE, f"its aud is not {TEAMS_TOKEN_AUDIENCE}"),
        (client_id in (claims.get("appid"), claims.get("azp")), "it was issued to another app"),
        (isinstance(tid, str) and _TENANT_ID.fullmatch(tid) is not None, "its tid is no tenant"),
        (
            claims.get("iss")
            in (f"https://login.microsoftonline.com/{tid}/v2.0", f"https://sts.windows.net/{tid}/"),
            "its iss is not the Entra issuer of its tenant",
        ),
        (claims.get("oid") == user_object_id, "it is for another user"),
        (set(TEAMS_TOKEN_SCOPES) <= granted, "its scp lacks Teams.ManageCalls Teams.ManageChats"),
        (
            isinstance(issued_after, int | float) and issued_after <= now + _CLOCK_SKEW_SECONDS,
            "it is not valid yet (nbf)",
        ),
        (isinstance(expires, int | float) and expires > now, "it has expired"),
    ]
    return next((problem for ok, problem in checks if not ok), None)
