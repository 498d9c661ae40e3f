"""Private keys kept under the data dir by the embedded adapters (dev sign-in, local ACS issuer).

A key is generated on first use and written so that no one ever sees a partial or world-readable
file: it goes to a private (0600) temporary file first and is hard-linked into place; the link
fails if another process got there first, and then that process's key is the one everybody uses.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

K = TypeVar("K", bound=PrivateKeyTypes)


def load_or_create_private_key(path: Path, kind: type[object], generate: Callable[[], K]) -> K:
    """The key stored at `path` (an instance of `kind`), made with `generate` if there is none.

    `kind` is the key's abstract class (e.g. rsa.RSAPrivateKey); `generate` fixes the type.
    """
    if not path.exists():
        _write_private(path, generate())
    # The RSA consistency check (~70 ms for a 2048-bit key, most of a cold start's key load)
    # guards against a malformed key from an untrusted source. These files are ones we
    # generated ourselves and keep private (0600, written atomically above), so the check can
    # only re-prove what `generate` already guaranteed; it is skipped. Do not reuse this
    # loader for keys that come from anyone else. (The flag is ignored for non-RSA keys.)
    key = serialization.load_pem_private_key(
        path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, kind):
        raise ValueError(f"{path.name} does not hold a {kind.__name__}")
    return cast(K, key)


def _write_private(path: Path, key: PrivateKeyTypes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        # Losing the race is fine: the other process's key is as good as ours.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
