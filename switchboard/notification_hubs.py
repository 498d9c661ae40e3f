"""Facts about Azure Notification Hubs that more than one layer needs (kept import-light).

The Send-rights connection string is parsed by the settings, to refuse a bad one at start-up with
the setting's name, and by the push adapter, to sign its requests: it lives here, beside neither,
so that settings never import an adapter.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionString:
    """The parts of a Notification Hubs (Service Bus) connection string the client needs."""

    endpoint: str  # https://{namespace}.servicebus.windows.net/
    key_name: str
    key: str

    @classmethod
    def parse(cls, text: str) -> ConnectionString:
        """`Endpoint=sb://…/;SharedAccessKeyName=…;SharedAccessKey=…`; ValueError (naming the
        missing part, never the value) otherwise."""
        parts: dict[str, str] = {}
        for item in text.strip().split(";"):
            name, sep, value = item.partition("=")
            if sep:
                parts[name.strip().lower()] = value.strip()
        missing = [
            name
            for name in ("Endpoint", "SharedAccessKeyName", "SharedAccessKey")
            if not parts.get(name.lower())
        ]
        if missing:
            raise ValueError(f"the connection string has no {', '.join(missing)}")
        endpoint = urllib.parse.urlsplit(parts["endpoint"])
        if endpoint.scheme not in ("sb", "https") or not endpoint.hostname:
            raise ValueError("the connection string's Endpoint is not sb://<namespace>...")
        return cls(
            endpoint=f"https://{endpoint.hostname}/",
            key_name=parts["sharedaccesskeyname"],
            key=parts["sharedaccesskey"],
        )

    @property
    def namespace(self) -> str:
        host = urllib.parse.urlsplit(self.endpoint).hostname or ""
        return host.split(".", 1)[0]
