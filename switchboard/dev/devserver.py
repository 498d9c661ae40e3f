"""The embedded HTTP host: serves the registered functions over uvicorn, as the Functions host does.

`python -m switchboard.devserver [--host 127.0.0.1] [--port 7071]` (this module, through its alias
`switchboard/devserver.py`) runs the app without Core Tools. Routes come from
`function_app.app.get_functions()` with the Functions route-template rules (`{id}`, `{id:guid}`,
`{id:int}`, `{id?}`, `{*rest}`) under host.json's route prefix; Event Grid triggers answer at
`/runtime/webhooks/eventgrid?functionName=NAME`, handshake included. Bodies over 64 KiB are refused
before the handler runs. One log line per request: method, path (never the query string or headers,
where tokens travel), status and duration, with the caller's path escaped (`switchboard.logs.safe`)
so it cannot forge a line. The Azure SDK loggers stay at WARNING (`AZURE_SDK_LOG_LEVEL` asks for
more). A busy port is reported, with the command to use another, before anything is logged as
running.

CORS is the host's job, as in Azure (the Function App's CORS setting) and `func start --cors`:
browser clients on another origin (a web app on localhost:3000) get preflights answered and
`Access-Control-Allow-Origin` on responses for the origins `--cors` allows (default: any, which
is safe here because callers authenticate with bearer tokens, never cookies).

In dev mode (AUTH_MODE=dev) it also serves the reference web client's build at `/`
(`switchboard/dev/static.py`); the Functions host never does. Development only: a publish
leaves `switchboard/dev/` out.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from switchboard import errors
from switchboard.dev.static import serves, static_response
from switchboard.errors import ConfigurationError
from switchboard.http import MAX_BODY_BYTES, problem, problem_for
from switchboard.logs import quiet_azure_sdk_logging, safe, safe_path

# The logger keeps the command's name: `switchboard.devserver` is what a developer runs.
log = logging.getLogger("switchboard.devserver")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TEMPLATE_PARAM = re.compile(
    r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}"
)
_CONSTRAINTS = {
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "int": r"-?[0-9]+",
    "long": r"-?[0-9]+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?:true|false|True|False)",
}


@dataclass(frozen=True)
class HttpFunction:
    name: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    arg_name: str
    handler: Callable[..., Any]


def compile_route(template: str, prefix: str) -> re.Pattern[str]:
    """A regex for a Functions route template, e.g. 'clubs/{clubId:guid}/call'."""
    parts = [re.escape(prefix.strip("/"))] if prefix.strip("/") else []
    regex = ""
    pos = 0
    for match in _TEMPLATE_PARAM.finditer(template):
        regex += re.escape(template[pos : match.start()])
        catch_all, name, constraint, optional = match.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get((constraint or "").lower(), r"[^/]+")
        group = f"(?P<{name}>{body})"
        if optional and regex.endswith("/"):
            regex = regex[:-1] + f"(?:/{group})?"
        else:
            regex += group + ("?" if optional else "")
        pos = match.end()
    regex += re.escape(template[pos:])
    parts.append(regex.strip("/") if regex else "")
    full = "/" + "/".join(p for p in parts if p)
    return re.compile(f"^{full}/?$", re.IGNORECASE)


def route_prefix(host_json: Path) -> str:
    """host.json's extensions.http.routePrefix ('api' when not set, as the host does)."""
    try:
        config = json.loads(host_json.read_text())
    except FileNotFoundError:
        return "api"
    prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix)


CORS_ALLOW_HEADERS = "authorization, content-type"
CORS_EXPOSE_HEADERS = "retry-after, www-authenticate, location"


class DevServer:
    """An ASGI app serving a FunctionApp's HTTP and Event Grid triggers."""

    def __init__(
        self,
        app: func.FunctionApp,
        prefix: str = "api",
        cors_origins: tuple[str, ...] = ("*",),
        web_dir: Path | None = None,
        reactions: bool = True,
    ) -> None:
        self.cors_origins = cors_origins
        # Whether the server runs the reaction worker while it serves (tests may drain instead).
        self.reactions = reactions
        # The reference web client's build (dev mode only): served at `/` and `/assets/…`.
        self.web_dir = web_dir
        self.http: list[HttpFunction] = []
        self.event_grid: dict[str, tuple[str, Callable[..., Any]]] = {}
        for fn in app.get_functions():
            # azure.functions types triggers loosely (Trigger | None); these are what it gives.
            trigger: Any = fn.get_trigger()
            handler = fn.get_user_function()
            name = str(fn.get_function_name())
            if trigger.type == "httpTrigger":
                route = str(trigger.route or name)
                methods = trigger.methods or ["GET", "POST", "PUT", "PATCH", "DELETE"]
                self.http.append(
                    HttpFunction(
                        name=name,
                        methods=frozenset(str(getattr(m, "value", m)).upper() for m in methods),
                        pattern=compile_route(route, prefix),
                        arg_name=str(trigger.name),
                        handler=handler,
                    )
                )
            elif trigger.type == "eventGridTrigger":
                self.event_grid[name.lower()] = (str(trigger.name), handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cors = self._cors_headers(headers.get("origin"))
        try:
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                status = await _send_response(send, self._preflight(cors), cors)
            else:
                status = await self._serve(scope, headers, receive, send, cors)
        except Exception:
            # A function that raised (HTTP handlers answer problems themselves; an Event Grid
            # function may not): a 500, as the Functions host answers, so Event Grid retries.
            log.exception(
                "function failed on %s %s", safe(scope["method"]), safe_path(scope["path"])
            )
            failure = problem(500, "internal_error", "Internal error", "Something went wrong.")
            status = await _send_response(send, failure, cors)
        elapsed = (time.perf_counter() - started) * 1000
        # The path is the caller's, decoded: escaped so `%0d%0a` or an ANSI escape cannot forge
        # or repaint a log line.
        log.info(
            "%s %s %d %.1fms", safe(scope["method"]), safe_path(scope["path"]), status, elapsed
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from switchboard.runtime import get_runtime

        # The reaction layer's worker: follow-up work recorded by requests (copies, fan-outs,
        # erasures) runs here in the background, as the Cosmos DB trigger runs it in Azure.
        stop = asyncio.Event()
        worker: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.reactions:
                    worker = asyncio.create_task(get_runtime().reactor.serve(stop))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    stop.set()
                    if worker is not None:
                        await worker
                    await get_runtime().close()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    def _cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not ("*" in self.cors_origins or origin in self.cors_origins):
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", CORS_EXPOSE_HEADERS.encode()),
            (b"vary", b"origin"),
        ]

    def _preflight(self, cors: list[tuple[bytes, bytes]]) -> func.HttpResponse:
        if not cors:
            return problem_for(errors.Forbidden("This origin is not allowed (CORS)."))
        return func.HttpResponse(
            status_code=204,
            headers={
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def _serve(
        self,
        scope: Scope,
        headers: dict[str, str],
        receive: Receive,
        send: Send,
        cors: list[tuple[bytes, bytes]],
    ) -> int:
        body = await _read_body(receive, headers)
        if body is None:
            response = problem_for(
                errors.PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
            )
            return await _send_response(send, response, cors)
        path: str = scope["path"]
        if self.web_dir is not None and scope["method"] == "GET" and serves(path):
            return await _send_response(send, static_response(self.web_dir, path), cors)
        if path.rstrip("/").lower() == "/runtime/webhooks/eventgrid":
            return await _send_response(send, await self._event_grid(scope, headers, body), cors)
        allowed: set[str] = set()
        for fn in self.http:
            match = fn.pattern.match(path)
            if match is None:
                continue
            if scope["method"] not in fn.methods:
                allowed |= fn.methods
                continue
            request = func.HttpRequest(
                method=scope["method"],
                url=_url(scope, headers),
                headers=headers,
                # Blank values kept, as the Functions host keeps them: `?status=` is a bad
                # status (400), not a missing one.
                params=dict(
                    parse_qsl(
                        scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
                    )
                ),
                route_params={k: v for k, v in match.groupdict().items() if v is not None},
                body=body,
            )
            return await _send_response(send, await _invoke(fn.handler, fn.arg_name, request), cors)
        if allowed:
            response = problem_for(
                errors.MethodNotAllowed(f"Use {', '.join(sorted(allowed))} on this route.")
            )
            response.headers["Allow"] = ", ".join(sorted(allowed))
        else:
            response = problem_for(errors.NotFound("No such route."))
        return await _send_response(send, response, cors)

    async def _event_grid(
        self, scope: Scope, headers: dict[str, str], body: bytes
    ) -> func.HttpResponse:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        target = self.event_grid.get(query.get("functionName", "").lower())
        if scope["method"] != "POST" or target is None:
            return problem_for(errors.NotFound("No such Event Grid function."))
        try:
            events = json.loads(body or b"[]")
        except ValueError:
            return problem_for(errors.InvalidJson("The body is not valid JSON."))
        events = events if isinstance(events, list) else [events]
        arg_name, handler = target
        for raw in events:
            if not isinstance(raw, dict):
                # One item that is not an event never fails the batch (Event Grid would
                # redeliver all of it): skipped, the rest handled.
                log.warning("an Event Grid item that is not an object skipped")
                continue
            if (raw.get("eventType") or raw.get("EventType")) == (
                "Microsoft.EventGrid.SubscriptionValidationEvent"
            ):
                data = raw.get("data")
                code = data.get("validationCode") if isinstance(data, dict) else None
                if not isinstance(code, str):
                    log.warning("a subscription validation event without its code skipped")
                    continue
                return func.HttpResponse(
                    json.dumps({"validationResponse": code}), mimetype="application/json"
                )
            await _invoke(handler, arg_name, _event(raw))
        return func.HttpResponse(status_code=200)


def _event(raw: dict[str, Any]) -> func.EventGridEvent:
    """An Event Grid event (Event Grid schema, or CloudEvents mapped onto it) for the trigger.
    Envelope fields in camelCase or, as older publishers send them, PascalCase."""

    def get(name: str) -> Any:
        value = raw.get(name)
        return raw.get(name[:1].upper() + name[1:]) if value is None else value

    event_time = get("eventTime") or get("time")
    try:
        when = datetime.fromisoformat(str(event_time).replace("Z", "+00:00"))
    except ValueError:
        when = None  # a malformed time is the function's business, not a failed delivery
    return func.EventGridEvent(
        id=str(get("id") or ""),
        data=get("data") or {},
        topic=str(get("topic") or get("source") or ""),
        subject=str(get("subject") or ""),
        event_type=str(get("eventType") or get("type") or ""),
        event_time=when if event_time else None,
        data_version=str(get("dataVersion") or ""),
    )


async def _invoke(handler: Callable[..., Any], arg_name: str, value: Any) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(**{arg_name: value})
    return await asyncio.to_thread(handler, **{arg_name: value})


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes | None:
    """The request body, or None once it is known to exceed the limit (read no further)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host") or "{}:{}".format(*scope.get("server", ("127.0.0.1", 7071)))
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")


async def _send_response(
    send: Send, response: func.HttpResponse | None, extra: Sequence[tuple[bytes, bytes]] = ()
) -> int:
    if response is None:
        response = func.HttpResponse(status_code=204)
    body = response.get_body() or b""
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    if response.mimetype and not any(k == b"content-type" for k, _ in headers):
        content_type = response.mimetype
        if response.charset and content_type.startswith(("text/", "application/json")):
            content_type += f"; charset={response.charset}"
        headers.append((b"content-type", content_type.encode("latin-1")))
    status = int(response.status_code)
    if status == 204:
        body = b""
        headers = [(k, v) for k, v in headers if k != b"content-type"]
    headers.extend(extra)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


def create_app(
    app: func.FunctionApp, root: Path | None = None, cors_origins: tuple[str, ...] = ("*",)
) -> DevServer:
    """The devserver for a FunctionApp (the project's `function_app.app`), built with the
    process settings.

    Builds the runtime now, so a bad setting stops start-up with its name instead of failing
    the first request. In dev mode (AUTH_MODE=dev) it also serves the web client's build.
    """
    from switchboard.runtime import get_runtime

    dev_mode = get_runtime().adapters.dev_issuer is not None
    root = root or Path(__file__).resolve().parents[2]
    web_dir = root / "web" / "build" if dev_mode else None
    return DevServer(app, route_prefix(root / "host.json"), cors_origins, web_dir)


def port_is_free(host: str, port: int) -> bool:
    """True when `host:port` can be bound now (SO_REUSEADDR, as uvicorn binds it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return True  # not ours to judge: uvicorn reports a bad host in its own words
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def parse_port(text: str) -> int | None:
    """A TCP port from the command line (0: any free one), or None when it is not one."""
    return int(text) if text.isdigit() and int(text) <= 65535 else None


def banner(asgi: DevServer, host: str, port: int) -> str:
    """The first line a developer reads: the mode, the store and where its data is, the URL."""
    from switchboard.runtime import get_runtime

    settings = get_runtime().settings
    if settings.switchboard_store == "sqlite":
        store = f"store sqlite in {settings.switchboard_data_dir.resolve()}"
    else:
        store = f"store cosmos (database {settings.cosmos_database})"
    mode = "embedded mode" if settings.switchboard_store == "sqlite" else "Azure store"
    return (
        f"switchboard: {mode}, {store}, auth {settings.auth_mode}, "
        f"on http://{host}:{port}/api ({len(asgi.http)} routes)"
    )


def main(load_app: Callable[[], func.FunctionApp], argv: list[str] | None = None) -> int:
    """The command: checks the arguments and the port, then loads the app (`load_app`, given by
    `python -m switchboard.devserver`, which sits above both this host and the app it hosts)."""
    parser = argparse.ArgumentParser(description="Run Switchboard without Core Tools.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", default="7071", help="port (7071, as func start; 0: any free)")
    parser.add_argument(
        "--cors",
        action="append",
        metavar="ORIGIN",
        help="an origin browser clients may call from (repeatable; default: any)",
    )
    args = parser.parse_args(argv)
    port = parse_port(args.port)
    if port is None:
        print(f"switchboard: PORT {args.port!r} is not a port number (0-65535)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_azure_sdk_logging()
    # Before anything is logged as running: a busy port otherwise fails after the banner.
    if not port_is_free(args.host, port):
        print(
            f"switchboard: port {port} is in use; run `make run PORT={port + 1}` "
            f"(or --port {port + 1})",
            file=sys.stderr,
        )
        return 2
    # SMS invitations link to this server's web client (its port, not 7071) unless told otherwise.
    if not os.environ.get("PUBLIC_APP_URL"):
        os.environ["PUBLIC_APP_URL"] = f"http://localhost:{port}"
    try:
        asgi = create_app(load_app(), cors_origins=tuple(args.cors or ["*"]))
    except ConfigurationError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn  # a development dependency: Azure runs the app on the Functions host
    except ImportError:
        print(
            "switchboard: the devserver needs uvicorn: pip install -r requirements-dev.txt",
            file=sys.stderr,
        )
        return 2

    print(banner(asgi, args.host, port), flush=True)
    if asgi.web_dir is not None:
        # localhost, not 127.0.0.1: the Calling SDK accepts plain http only on localhost.
        print(f"switchboard: the web client on http://localhost:{port}/", flush=True)
    uvicorn.run(asgi, host=args.host, port=port, log_level="warning", access_log=False)
    return 0
