"""Dev mode's own OIDC issuer: the key that signs `POST /api/dev/login` tokens, and its JWKS.

Development only (AUTH_MODE=dev, refused in Azure) and never shipped: `.funcignore` leaves
`switchboard/dev/` out of the Functions package. Its tokens are checked by the same
`switchboard.auth.TokenVerifier` as any issuer's, through a `StaticKeySource`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from switchboard.auth import StaticKeySource
from switchboard.keyfiles import load_or_create_private_key

DEV_ISSUER = "switchboard-dev"
DEV_AUDIENCE = "switchboard"
DEV_TOKEN_SECONDS = 3600


class DevTokenIssuer:
    """Dev mode's own OIDC issuer: an RS256 key kept under the data dir, and its JWKS."""

    KEY_FILE = "dev-auth-key.pem"

    def __init__(self, data_dir: Path, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE):
        self.issuer = issuer
        self.audience = audience
        self._private_key = load_or_create_private_key(
            data_dir / self.KEY_FILE,
            rsa.RSAPrivateKey,
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key()))
        self.key_id = _thumbprint(public_jwk)
        self._jwks = {"keys": [{**public_jwk, "kid": self.key_id, "alg": "RS256", "use": "sig"}]}

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def key_source(self) -> StaticKeySource:
        return StaticKeySource(self._jwks)

    def issue(self, user_id: str, display_name: str | None) -> tuple[str, int]:
        """An app token for `user_id` and its lifetime in seconds."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now + DEV_TOKEN_SECONDS,
        }
        if display_name:
            claims["name"] = display_name
        token = jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id}
        )
        return token, DEV_TOKEN_SECONDS


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint, so the kid changes exactly when the key does."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
