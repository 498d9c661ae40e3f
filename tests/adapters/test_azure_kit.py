"""The Azure adapter kit (`switchboard.adapters.azure`): Retry-After parsing, the SDK error →
port error table, and the credential choice. Errors are the SDK's own, raised with responses
built by the shared mock transport; credentials are constructed, never asked for a token."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict

from switchboard.adapters import azure as kit
from switchboard.errors import DependencyUnavailable
from tests.azure_transport import json_response

SECRET_MESSAGE = "the SDK message quotes the request: accesskey=not-for-logs"


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 2),
        ({"x-ms-retry-after-ms": "2500"}, 3),
        ({"Retry-After": "9"}, 9),
        ({"Retry-After": "0.2"}, 1),  # rounded up, never 0
        ({"retry-after-ms": "1000", "Retry-After": "60"}, 1),  # milliseconds win
        ({"retry-after-ms": "soon", "x-ms-retry-after-ms": "4000"}, 4),  # next usable one
        ({"Retry-After": "99999"}, kit.MAX_RETRY_AFTER_SECONDS),  # capped
        ({"Retry-After": http_date(-60)}, kit.DEFAULT_RETRY_AFTER_SECONDS),  # already past
        ({"Retry-After": "0"}, kit.DEFAULT_RETRY_AFTER_SECONDS),
        ({"Retry-After": "-3"}, kit.DEFAULT_RETRY_AFTER_SECONDS),
        ({"Retry-After": "nan"}, kit.DEFAULT_RETRY_AFTER_SECONDS),
        ({"Retry-After": "next Tuesday"}, kit.DEFAULT_RETRY_AFTER_SECONDS),
        ({}, kit.DEFAULT_RETRY_AFTER_SECONDS),
        (None, kit.DEFAULT_RETRY_AFTER_SECONDS),
    ],
)
def test_retry_after_forms(headers: dict[str, str] | None, expected: int) -> None:
    assert kit.retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    # Seconds resolution and the time between formatting and parsing leave a little slack.
    assert 100 <= kit.retry_after_seconds({"Retry-After": http_date(120)}) <= 121


def test_retry_after_header_names_ignore_case() -> None:
    assert kit.retry_after_seconds(CaseInsensitiveDict({"RETRY-AFTER-MS": "3000"})) == 3
    assert kit.retry_after_seconds({"X-Ms-Retry-After-Ms": "3000"}) == 3


def test_retry_after_default_and_cap_are_the_callers() -> None:
    assert kit.retry_after_seconds({}, default=7) == 7
    assert kit.retry_after_seconds({"Retry-After": "90"}, cap=30) == 30


async def http_error(
    status: int,
    headers: dict[str, str] | None = None,
    cls: type[HttpResponseError] = HttpResponseError,
) -> HttpResponseError:
    """The SDK's own error for a response with `status`, as a client would raise it."""
    request = HttpRequest("POST", "https://example.invalid/things")
    response = json_response(
        request, status, {"error": {"code": "Code", "message": SECRET_MESSAGE}}, headers
    )
    await response.read()
    return HttpResponseError(message=SECRET_MESSAGE, response=response)


def mapped(error: BaseException, **options: Any) -> BaseException:
    """What `sdk_errors` lets out when `error` is raised inside it."""
    with (
        pytest.raises(BaseException) as raised,  # noqa: PT011 (any outcome is inspected)
        kit.sdk_errors("thing", service="Thing", check="THING_KEY", **options),
    ):
        raise error
    return raised.value


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_unavailable_with_the_services_hint(status: int) -> None:
    result = mapped(await http_error(status, {"Retry-After": "12"}))
    assert isinstance(result, DependencyUnavailable)
    assert result.dependency == "thing"
    assert result.retry_after == 12
    assert result.__cause__ is None  # the SDK message is not chained along


@pytest.mark.parametrize(
    "error",
    [
        ServiceRequestError("connection refused"),
        ServiceResponseError("connection reset"),
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
    ],
    ids=["ServiceRequestError", "ServiceResponseError", "aiohttp", "TimeoutError"],
)
def test_connection_failures_are_unavailable(error: Exception) -> None:
    result = mapped(error)
    assert isinstance(result, DependencyUnavailable)
    assert result.retry_after == kit.DEFAULT_RETRY_AFTER_SECONDS


def test_an_adapters_own_connection_errors_are_unavailable() -> None:
    class SdkTimeout(Exception):
        pass

    assert isinstance(mapped(SdkTimeout(), connection_errors=(SdkTimeout,)), DependencyUnavailable)
    assert isinstance(mapped(SdkTimeout()), SdkTimeout)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_unavailable_and_one_error_line_says_what_to_check(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = mapped(await http_error(status, {"Retry-After": "30"}))
    assert isinstance(result, DependencyUnavailable)
    assert result.retry_after == kit.DEFAULT_RETRY_AFTER_SECONDS  # waiting will not fix a key
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "THING_KEY" in record.getMessage()
    assert SECRET_MESSAGE not in record.getMessage()


async def test_a_credential_that_cannot_get_a_token_is_a_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = mapped(ClientAuthenticationError(SECRET_MESSAGE))
    assert isinstance(result, DependencyUnavailable)
    (record,) = caplog.records
    assert "THING_KEY" in record.getMessage()
    assert SECRET_MESSAGE not in record.getMessage()


@pytest.mark.parametrize("status", [400, 404, 409, 412])
async def test_other_statuses_propagate(status: int) -> None:
    error = await http_error(status)
    assert mapped(error) is error


def test_other_exceptions_propagate() -> None:
    error = ValueError("a bug")
    assert mapped(error) is error


async def test_the_adapters_hook_maps_its_statuses_first() -> None:
    class Gone(Exception):
        pass

    def on_status(error: HttpResponseError) -> None:
        if error.status_code in (404, 503):
            raise Gone

    assert isinstance(mapped(await http_error(404), on_status=on_status), Gone)
    assert isinstance(mapped(await http_error(503), on_status=on_status), Gone)
    # When the hook returns, the kit's table applies.
    assert isinstance(mapped(await http_error(429), on_status=on_status), DependencyUnavailable)


async def test_an_adapter_may_call_more_statuses_retryable() -> None:
    assert isinstance(mapped(await http_error(449), retryable={449}), DependencyUnavailable)
    assert isinstance(mapped(await http_error(449)), HttpResponseError)


async def test_a_user_assigned_identity_when_a_client_id_is_given() -> None:
    from azure.identity.aio import ManagedIdentityCredential

    credential = kit.credential("00000000-0000-0000-0000-00000000c11d")
    try:
        assert type(credential) is ManagedIdentityCredential
    finally:
        await credential.close()


@pytest.mark.parametrize("client_id", [None, ""])
async def test_default_azure_credential_without_a_client_id(client_id: str | None) -> None:
    from azure.identity.aio import DefaultAzureCredential

    credential = kit.credential(client_id)
    try:
        assert type(credential) is DefaultAzureCredential
    finally:
        await credential.close()


def test_importing_the_kit_imports_no_azure_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import switchboard.adapters.azure\n"
        "loaded = [m for m in sys.modules if m == 'azure' or m.startswith('azure.')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Backoff and guarded: one window per dependency, one bound per call (issue 21 B2, B3) ----


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_holds_the_longest_wait_and_reports_what_is_left() -> None:
    clock = _Clock()
    backoff = kit.Backoff("acs", clock=clock)
    backoff.check()  # open
    backoff.hold(30)
    backoff.hold(5)  # a shorter hint never shortens the window
    clock.now += 10.5
    with pytest.raises(DependencyUnavailable) as caught:
        backoff.check()
    assert (caught.value.dependency, caught.value.retry_after) == ("acs", 20)
    assert not backoff.open
    clock.now += 19.5
    backoff.check()
    assert backoff.open


async def test_guarded_refuses_in_the_window_unless_told_not_to_check() -> None:
    clock = _Clock()
    backoff = kit.Backoff("chat", clock=clock)
    backoff.hold(10)
    with pytest.raises(DependencyUnavailable):
        async with kit.guarded(backoff, service="ACS Chat", operation="x"):
            raise AssertionError("not called in the window")
    ran = []
    async with kit.guarded(backoff, service="ACS Chat", operation="x", check=False):
        ran.append(True)  # the caller that saw the 429 and waited it out itself
    assert ran == [True]


async def test_sdk_errors_closes_the_window_on_a_429_only() -> None:
    backoff = kit.Backoff("sms", clock=_Clock())
    for status in (500, 503, 408):
        error = await http_error(status, {"Retry-After": "9"})
        assert isinstance(mapped(error, backoff=backoff), DependencyUnavailable)
        assert backoff.open, status
    error = await http_error(429, {"Retry-After": "9"})
    assert isinstance(mapped(error, backoff=backoff), DependencyUnavailable)
    assert not backoff.open
