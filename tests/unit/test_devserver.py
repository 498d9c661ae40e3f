"""The devserver as an ASGI app, on a small FunctionApp of its own: HTTP routing by template and
method, Event Grid delivery and the subscription handshake, the body limit, log lines a caller
cannot forge, a busy port reported before start-up, a bad port in one line, and the start-up
banner."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest

from switchboard.dev.devserver import DevServer, banner, main, port_is_free
from switchboard.http import ROUTES, Reply, blueprint, route
from switchboard.runtime import Runtime

received: list[func.EventGridEvent] = []


def build_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="items/{itemId:guid}", methods=["GET"])
    async def get_item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(
            json.dumps({"id": req.route_params["itemId"], "q": req.params.get("q")}),
            mimetype="application/json",
        )

    @app.route(route="echo", methods=["POST"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:  # a sync handler runs in a thread
        return func.HttpResponse(req.get_body(), status_code=201, mimetype="text/plain")

    @app.event_grid_trigger(arg_name="event")
    def sms_events(event: func.EventGridEvent) -> None:
        received.append(event)

    return app


@pytest.fixture(scope="module")
def server() -> DevServer:
    return DevServer(build_app(), "api")


async def call(server: DevServer, method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, url, **kwargs)


async def test_route_params_query_and_methods(server: DevServer) -> None:
    item = "0f8fad5b-d9cb-469f-a165-70867728950e"
    resp = await call(server, "GET", f"/api/items/{item}?q=x")
    assert resp.status_code == 200
    assert resp.json() == {"id": item, "q": "x"}
    assert (await call(server, "GET", "/api/items/not-a-guid")).status_code == 404
    wrong = await call(server, "DELETE", f"/api/items/{item}")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"


async def test_sync_handlers_and_bodies(server: DevServer) -> None:
    resp = await call(server, "POST", "/api/echo", content=b"hello")
    assert resp.status_code == 201
    assert resp.text == "hello"
    too_big = await call(server, "POST", "/api/echo", content=b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"


async def test_event_grid_delivery_and_handshake(server: DevServer) -> None:
    url = "/runtime/webhooks/eventgrid?functionName=sms_events"
    handshake = await call(
        server,
        "POST",
        url,
        json=[
            {
                "id": "1",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "abc-123"},
            }
        ],
    )
    assert handshake.json() == {"validationResponse": "abc-123"}
    received.clear()
    delivered = await call(
        server,
        "POST",
        url,
        json=[
            {
                "id": "e1",
                "topic": "/subscriptions/x/acs",
                "subject": "/phonenumber/15555550100",
                "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
                "eventTime": "2026-11-22T01:00:00Z",
                "dataVersion": "1.0",
                "data": {"messageId": "m1", "deliveryStatus": "Delivered"},
            }
        ],
    )
    assert delivered.status_code == 200
    (event,) = received
    assert event.event_type == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert event.get_json() == {"messageId": "m1", "deliveryStatus": "Delivered"}
    unknown = await call(server, "POST", "/runtime/webhooks/eventgrid?functionName=nope", json=[])
    assert unknown.status_code == 404


async def test_cors_preflight_and_responses() -> None:
    server = DevServer(build_app(), "api", cors_origins=("http://localhost:3000",))
    item = "0f8fad5b-d9cb-469f-a165-70867728950e"
    preflight = await call(
        server,
        "OPTIONS",
        f"/api/items/{item}",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    actual = await call(
        server, "GET", f"/api/items/{item}", headers={"origin": "http://localhost:3000"}
    )
    assert actual.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "retry-after" in actual.headers["access-control-expose-headers"]
    other = await call(server, "GET", f"/api/items/{item}", headers={"origin": "https://evil.test"})
    assert "access-control-allow-origin" not in other.headers
    refused = await call(
        server,
        "OPTIONS",
        f"/api/items/{item}",
        headers={"origin": "https://evil.test", "access-control-request-method": "GET"},
    )
    assert refused.status_code == 403


async def test_a_failing_event_function_is_a_500_so_event_grid_retries() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.event_grid_trigger(arg_name="event")
    def broken(event: func.EventGridEvent) -> None:
        raise RuntimeError("boom")

    resp = await call(
        DevServer(app, "api"),
        "POST",
        "/runtime/webhooks/eventgrid?functionName=broken",
        json=[{"id": "1", "eventType": "X", "data": {}}],
    )
    assert resp.status_code == 500
    assert resp.json()["code"] == "internal_error"


async def test_a_caller_cannot_forge_or_colour_the_access_log(
    server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.devserver")
    forged = "/api/x%0d%0a2026-01-01%20INFO%20switchboard.devserver%20GET%20/api/admin%20200%1b[31m"
    resp = await call(server, "GET", forged)
    assert resp.status_code == 404
    (line,) = [r.getMessage() for r in caplog.records if r.name == "switchboard.devserver"]
    for control in ("\r", "\n", "\x1b"):
        assert control not in line
    assert line.startswith("GET /api/x\\r\\n2026-01-01 INFO")
    assert re.fullmatch(r"GET /api/x\S* .* 404 [0-9.]+ms", line)


async def test_an_unhandled_error_logs_the_path_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bp = blueprint("test-logs")
    saved = list(ROUTES)

    @route(bp, "GET", "x", summary="fails", public=True)
    async def broken_for_log_test() -> Reply:
        raise RuntimeError("boom")

    ROUTES[:] = saved  # a test route, not one of the app's

    # The devserver and the Functions host hand handlers the decoded path.
    request = func.HttpRequest("GET", "http://host/api/x\r\nFAKE LINE\x1b[2J?t=secret", body=b"")
    resp = await broken_for_log_test(request)
    assert resp.status_code == 500
    (line,) = [r.getMessage() for r in caplog.records if r.name == "switchboard.http"]
    assert line == "unhandled error in GET /api/x\\r\\nFAKE LINE\\x1b[2J"


def test_a_busy_port_is_reported_before_the_banner(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.devserver")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(_no_app, ["--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"switchboard: port {port} is in use; run `make run PORT={port + 1}`" in err
    assert not [r for r in caplog.records if "Switchboard on" in r.getMessage()]
    assert port_is_free("127.0.0.1", port)  # and free again once released


def _no_app() -> func.FunctionApp:
    raise AssertionError("the app is loaded only once the arguments and the port are fine")


@pytest.mark.parametrize("port", ["99999", "-1", "http", "70.5", ""])
def test_a_bad_port_is_one_clear_line(capsys: pytest.CaptureFixture[str], port: str) -> None:
    assert main(_no_app, ["--port", port]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"switchboard: PORT {port!r} is not a port number (0-65535)\n"


def test_the_banner_names_the_store_its_absolute_data_dir_and_the_url(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # started from another folder: the banner still says where
    line = banner(DevServer(build_app()), "127.0.0.1", 7072)
    data_dir = runtime.settings.switchboard_data_dir.resolve()
    assert data_dir.is_absolute()
    assert line.startswith(f"switchboard: embedded mode, store sqlite in {data_dir}, auth dev, ")
    assert "on http://127.0.0.1:7072/api" in line
