"""A local OIDC issuer over HTTPS for the sign-in tests: a throwaway CA, a server certificate for
127.0.0.1 signed by it, discovery and JWKS served over TLS, and tokens minted with PyJWT.

Nothing is faked on Switchboard's side: `RemoteJwksKeySource` fetches from this server through
its real TLS stack, trusting the CA through an `ssl.SSLContext` or through `SSL_CERT_FILE` (the
production guide's way to trust a private CA). The issuer can rotate and withdraw keys, go down
(500), hang, answer 404, redirect, or serve any document a test sets.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

TENANT_PATH = "/tenant/v2.0"
AUDIENCE = "4f1a3c2e-0000-4000-8000-00000000a0d1"  # an API app registration's client id
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Pki:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost, written to `directory`."""

    directory: Path
    ca_file: Path = field(init=False)
    cert_file: Path = field(init=False)
    key_file: Path = field(init=False)

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Switchboard test CA"))
            .issuer_name(_name("Switchboard test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca_file = self.directory / "ca.pem"
        self.cert_file = self.directory / "server.pem"
        self.key_file = self.directory / "server-key.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(pem))
        self.cert_file.write_bytes(cert.public_bytes(pem))
        self.key_file.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass
class SigningKey:
    kid: str
    private: Any
    jwk: dict[str, Any]


def rsa_signing_key(kid: str, *, alg: str | None = None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return SigningKey(kid, private, jwk)


def ec_signing_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    return SigningKey(kid, private, jwk)


class HttpsIssuer:
    """The running issuer: `issuer` is its URL (…/tenant/v2.0), as AUTH_ISSUER names it."""

    def __init__(self, pki: Pki, keys: list[SigningKey]) -> None:
        self.pki = pki
        self.keys = list(keys)
        self.hits: list[str] = []
        self.mode = "ok"  # ok | down (500) | hang | missing (404)
        self.documents: dict[str, Any] = {}  # path → document (overrides), or ("redirect", url)
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                if outer.mode == "hang":
                    outer._release.wait(30)
                    return
                if outer.mode == "down":
                    self._send(500, b"oops", "text/plain")
                    return
                answer = outer.documents.get(self.path, outer._default(self.path))
                if outer.mode == "missing" or answer is None:
                    self._send(404, b"not found", "text/plain")
                elif isinstance(answer, tuple) and answer[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", answer[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                    self._send(200, body, "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert_file, pki.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self._server.server_address[1]}"
        self.issuer = self.origin + TENANT_PATH
        self.jwks_url = self.origin + "/keys"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _default(self, path: str) -> Any:
        if path == TENANT_PATH + "/.well-known/openid-configuration":
            return {"issuer": self.issuer, "jwks_uri": self.jwks_url}
        if path == "/keys":
            return {"keys": [k.jwk for k in self.keys]}
        return None

    def mint(self, key: SigningKey | None = None, *, alg: str = "RS256", **overrides: Any) -> str:
        """A delegated Entra-style v2 access token from this issuer (override or drop claims)."""
        key = key or self.keys[0]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "sub-alice",
            "oid": "0b8e6a4c-7d1e-4c44-9f43-5a1f2e3d4c5b",
            "tid": TENANT_ID,
            "scp": "access_as_user",
            "name": "Alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key.private, algorithm=alg, headers={"kid": key.kid})

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def https_issuer(directory: Path, keys: list[SigningKey] | None = None) -> Iterator[HttpsIssuer]:
    issuer = HttpsIssuer(Pki(directory), keys or [rsa_signing_key("k1")])
    try:
        yield issuer
    finally:
        issuer.close()
