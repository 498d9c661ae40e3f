"""Phone & SMS figures for `make bench`: store and SMS operations per verification (code sent,
code checked), per SMS invitation and per `sms_events` event, counted at the ports with PortSpy
on the embedded adapters (SQLite + the local outbox), and the handler time of each, median of a
few hundred runs. Nothing is asserted: the counts are pinned by tests, times vary by machine."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import azure.functions as func

ROUNDS = 200


async def measure(data_dir: Path) -> dict[str, dict[str, float]]:
    """Per operation: store and SMS calls (by name) and the median handler time in ms."""
    from switchboard.adapters.sms_local import LocalSmsOutbox
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.services.phone import PhoneService
    from tests.conftest import app_server, make_runtime
    from tests.proxies import spy, spy_of

    rt = make_runtime(
        data_dir,
        store=spy(SqliteStore(data_dir / "phone.sqlite")),
        sms_sender=spy(LocalSmsOutbox(data_dir)),
    )

    rt.__dict__["phone"] = PhoneService(  # a limit no bench run reaches; the real club check
        rt.adapters.store,
        rt.adapters.sms_sender,
        lambda: rt.identity,
        daily_invites=10**6,
        app_url="https://app.example",
        club_access=rt.clubs.require_member,
    )
    from switchboard.runtime import set_runtime

    set_runtime(rt)
    store, sms = spy_of(rt.adapters.store), spy_of(rt.adapters.sms_sender)
    server = app_server()

    def handler(method: str, path: str) -> Any:
        for fn in server.http:
            if fn.pattern.match(path) and method in fn.methods:
                return fn.handler
        raise LookupError(path)

    _, events = server.event_grid["sms_events"]
    results: dict[str, dict[str, float]] = {}

    async def call(user: str, method: str, path: str, body: Any) -> func.HttpResponse:
        assert rt.adapters.dev_issuer is not None
        token, _ = rt.adapters.dev_issuer.issue(user, user)
        req = func.HttpRequest(
            method=method,
            url=f"http://localhost{path}",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            body=json.dumps(body).encode(),
        )
        resp: func.HttpResponse = await handler(method, path)(req)
        assert resp.status_code < 300, (path, resp.status_code, resp.get_body())
        return resp

    def record(label: str, times: list[float]) -> None:
        results[label] = {
            "store": sum(store.calls.values()) / len(times),
            "sms": sum(sms.calls.values()) / len(times),
            **{f"store.{k}": v / len(times) for k, v in sorted(store.calls.items())},
            "median_ms": round(statistics.median(times) * 1000, 3),
        }

    # Each round is a new user with a new number, so no limit interferes.
    send_t: list[float] = []
    verify_t: list[float] = []
    invite_t: list[float] = []
    report_t: list[float] = []
    message_ids: list[str] = []
    clubs: list[str] = []
    for phase in ("send", "verify", "invite", "report"):
        if phase == "invite":  # each user's own club, made before the count starts
            for i in range(ROUNDS):
                clubs.append((await rt.clubs.create_club(f"bench{i}", "Bench", "invite")).club_id)
        store.calls.clear()
        sms.calls.clear()
        for i in range(ROUNDS):
            user, number = f"bench{i}", f"+1425555{i:04d}"
            started = time.perf_counter()
            if phase == "send":
                await call(user, "POST", "/api/me/phone", {"phoneNumber": number})
                send_t.append(time.perf_counter() - started)
            elif phase == "verify":
                code = await _code(rt.adapters.sms_sender, number)  # not through the spy
                started = time.perf_counter()
                await call(user, "POST", "/api/me/phone/verify", {"code": code})
                verify_t.append(time.perf_counter() - started)
            elif phase == "invite":
                resp = await call(
                    user, "POST", "/api/invites/sms", {"to": number, "clubId": clubs[i]}
                )
                invite_t.append(time.perf_counter() - started)
                message_ids.append(json.loads(resp.get_body())["messageId"])
            else:
                event = func.EventGridEvent(
                    id=str(i),
                    data={"messageId": message_ids[i], "deliveryStatus": "Delivered"},
                    topic="t",
                    subject="s",
                    event_type="Microsoft.Communication.SMSDeliveryReportReceived",
                    event_time=None,
                    data_version="1.0",
                )
                await events(event=event)
                report_t.append(time.perf_counter() - started)
        times = {"send": send_t, "verify": verify_t, "invite": invite_t, "report": report_t}[phase]
        label = {
            "send": "POST /api/me/phone (code sent)",
            "verify": "POST /api/me/phone/verify (right code)",
            "invite": "POST /api/invites/sms (to a club's call, membership check included)",
            "report": "sms_events: one delivery report",
        }[phase]
        record(label, times)
    set_runtime(None)
    await rt.close()
    return results


async def _code(outbox: Any, number: str) -> str:
    for message in await outbox.inner.messages(limit=1000):
        if message.to == number and message.tag == "verification":
            match = re.search(r"\b(\d{6})\b", message.message)
            assert match
            return match.group(1)
    raise LookupError(number)


def report_lines(results: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        f"| phone & SMS, per request (mean of {ROUNDS}) | store | SMS | detail | median ms |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        detail = ", ".join(f"{k}={v:g}" for k, v in r.items() if k.startswith("store."))
        lines.append(f"| {label} | {r['store']:g} | {r['sms']:g} | {detail} | {r['median_ms']} |")
    return lines


def phone_report(data_dir: Path) -> str:
    """The section `bench/__main__.py` prints."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return "\n".join(["", *report_lines(asyncio.run(measure(data_dir)))])


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(phone_report(Path(tmp)))
