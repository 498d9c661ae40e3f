"""What every Azure adapter shares: the credential choice, Retry-After parsing, and the mapping
of Azure SDK failures to the ports' exceptions.

- `credential(client_id)`: the managed identity an adapter uses when it has no key or
  connection string — `ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)` for a user-assigned
  identity, else `DefaultAzureCredential` (the system-assigned identity in Azure, `az login` on a
  laptop). The caller owns it and closes it.
- `retry_after_seconds(headers)`: the service's wait hint from `retry-after-ms`,
  `x-ms-retry-after-ms` or `Retry-After` (seconds or an HTTP date), with a default and a cap.
- `sdk_errors(...)`: a context manager that turns throttling, server trouble, timeouts and
  connection failures into `DependencyUnavailable(dependency, retry_after=…)`, and refused
  credentials (401/403) into the same plus one error log line naming what to check (never the
  SDK's message, which can quote the request). Each adapter maps its own statuses (404, 409,
  412…) through `on_status` first; anything left unmapped (a 400: our bug) propagates.
- `Backoff` and `guarded(...)`: what keeps one process from hammering a service that throttles
  or hangs. After a 429 every caller of the adapter gets 503 with the remaining Retry-After and
  no call is made until the service's wait is over (one call per Retry-After window, however
  many requests arrive); and every call has a total time bound (`CALL_BOUND_SECONDS`, SDK
  retries included), past which it is a 503 and a log line naming the dependency.

Azure SDKs are imported inside the functions, so importing this module costs nothing when the app
runs on its embedded adapters.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from switchboard import telemetry
from switchboard.errors import DependencyUnavailable

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import HttpResponseError

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 5
# A Retry-After beyond this is passed on capped: our callers retry anyway, and a client told to
# wait an hour would rather try again sooner.
MAX_RETRY_AFTER_SECONDS = 300

# Statuses that mean "try again later" rather than "your request is wrong": timeout, throttling
# and every 5xx (checked separately).
RETRYABLE_STATUS: frozenset[int] = frozenset({408, 429})

# The SDK pipeline's retries for every ACS client (identity, SMS, chat) unless a caller overrides
# them: throttling and 5xx are NOT retried inside the request (retry_status=0) — the SDK would
# sleep for the service's Retry-After while the HTTP caller waits; they surface at once as a 503
# with that Retry-After. Connection failures get a couple of quick retries.
ACS_CLIENT_KWARGS: Mapping[str, Any] = {
    "retry_total": 2,
    "retry_status": 0,
    "retry_backoff_factor": 0.4,
    "retry_backoff_max": 2,
}

StatusHook = Callable[["HttpResponseError"], None]

# The total time one outbound call may take, the SDK's own retries included: well under the
# Functions host's 230 s limit for an HTTP answer, and long enough for a healthy service's slow
# moments (ACS answers in well under a second; a Graph meeting create in a few).
CALL_BOUND_SECONDS = 20.0
# What a caller is told to wait after a call ran out of time (no hint from a silent service).
TIMEOUT_RETRY_AFTER_SECONDS = 10


class Backoff:
    """One dependency's throttling window, shared by every caller of the adapter that owns it.

    `hold(seconds)` after a 429 closes the window for the service's Retry-After; `check()` before
    each call raises `DependencyUnavailable` with the remaining wait while it is closed, so no
    call reaches the service until then. In memory: each instance (process) backs off on its
    own, as each one was told to by the service.
    """

    def __init__(self, dependency: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.dependency = dependency
        self._clock = clock
        self._until = -math.inf

    def check(self) -> None:
        remaining = self._until - self._clock()
        if remaining > 0:
            raise DependencyUnavailable(self.dependency, retry_after=math.ceil(remaining))

    def hold(self, seconds: float) -> None:
        self._until = max(self._until, self._clock() + seconds)

    @property
    def open(self) -> bool:
        return self._clock() >= self._until


@asynccontextmanager
async def guarded(
    backoff: Backoff,
    *,
    service: str,
    operation: str,
    seconds: float = CALL_BOUND_SECONDS,
    check: bool = True,
    log: logging.Logger = logger,
) -> AsyncIterator[None]:
    """Run one outbound call inside the dependency's back-off window and time bound.

    Refuses at once (503, the remaining wait) while `backoff` is closed, unless `check` is False
    (the caller that saw the 429 and waited it out itself); past `seconds` the call is cancelled
    and answered 503 with one log line naming the dependency. Use it around `sdk_errors`, which
    closes the window on a 429 when given the same `backoff`.
    """
    if check:
        backoff.check()
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        telemetry.DEPENDENCY_TIMEOUTS.add(1, dependency=backoff.dependency)
        log.warning("%s %s gave no answer within %.0f s", service, operation, seconds)
        raise DependencyUnavailable(
            backoff.dependency, retry_after=TIMEOUT_RETRY_AFTER_SECONDS
        ) from None


def credential(client_id: str | None) -> AsyncTokenCredential:
    """The managed-identity credential for an adapter without a key: user-assigned when
    `client_id` (AZURE_CLIENT_ID) is given, else `DefaultAzureCredential`. Nothing is requested
    from Azure until the first token is needed."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


def retry_after_seconds(
    headers: Mapping[str, str] | None,
    *,
    default: int = DEFAULT_RETRY_AFTER_SECONDS,
    cap: int = MAX_RETRY_AFTER_SECONDS,
) -> int:
    """Whole seconds the service asked us to wait, rounded up, between 1 and `cap`; `default`
    when it sent no usable hint. `headers` should be case-insensitive (azure-core's are); plain
    dicts are matched on the lower-case names too."""
    headers = headers or {}

    def header(name: str) -> str | None:
        value = headers.get(name)
        if value is None:
            value = next((v for k, v in headers.items() if k.lower() == name), None)
        return value

    seconds: float | None = None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = header(name)
        if value:
            try:
                seconds = float(value) / 1000
            except ValueError:
                continue
            break
    if seconds is None and (value := header("retry-after")):
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
    # NaN and infinity fail these comparisons or are capped below.
    if seconds is None or not seconds > 0:
        return default
    return max(1, min(math.ceil(min(seconds, cap)), cap))


def response_headers(error: BaseException) -> Mapping[str, str]:
    """The headers of the response an SDK error carries, if any."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        headers = getattr(error, "headers", None)  # Cosmos errors keep them on the error
    return headers or {}


def error_code(error: BaseException) -> str:
    """The service's error code (`error.code` of the ODATA body), or "unknown"."""
    code = getattr(getattr(error, "error", None), "code", None)
    return str(code) if code else "unknown"


def is_connection_error(error: BaseException) -> bool:
    """True for failures to reach the service at all (DNS, refused, reset, TLS, timeouts)."""
    import aiohttp
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    return isinstance(
        error, ServiceRequestError | ServiceResponseError | aiohttp.ClientError | TimeoutError
    )


def unavailable(dependency: str, error: BaseException) -> NoReturn:
    """Raise `DependencyUnavailable` with the service's retry hint from `error`'s response.

    The SDK error is not chained: its message can quote the request."""
    raise DependencyUnavailable(
        dependency, retry_after=retry_after_seconds(response_headers(error))
    ) from None


@contextmanager
def sdk_errors(
    dependency: str,
    *,
    service: str,
    check: str,
    operation: str = "request",
    on_status: StatusHook | None = None,
    retryable: Collection[int] = RETRYABLE_STATUS,
    connection_errors: tuple[type[BaseException], ...] = (),
    backoff: Backoff | None = None,
    log: logging.Logger = logger,
) -> Iterator[None]:
    """Turn Azure SDK failures inside the block into the ports' exceptions.

    `dependency` names the dependency in `DependencyUnavailable` ("acs", "store"); `service` is
    its name in log lines ("ACS"); `check` says what to check when credentials are refused
    ("ACS_CONNECTION_STRING, or the managed identity and its role on the ACS resource");
    `operation` names the call in log lines ("issue_token").
    `on_status` sees every `HttpResponseError` first and raises the adapter's own exception for
    the statuses it maps (404, 409, 412…); when it returns, the mapping below applies. Statuses
    in `retryable`, every 5xx and a missing status become `DependencyUnavailable` with the
    service's Retry-After; `connection_errors` adds SDK-specific transport failures to the ones
    every SDK shares. A 429 also closes `backoff` for the service's Retry-After.
    """
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    try:
        yield
    except HttpResponseError as error:
        if on_status is not None:
            on_status(error)
        status = error.status_code
        if status in (401, 403) or isinstance(error, ClientAuthenticationError):
            log.error(
                "%s refused Switchboard's credentials on %s (HTTP %s, code %s): check %s",
                service,
                operation,
                status if status is not None else "none, credential failure",
                error_code(error),
                check,
            )
            raise DependencyUnavailable(
                dependency, retry_after=DEFAULT_RETRY_AFTER_SECONDS
            ) from None
        if status is None or status in retryable or status >= 500:
            log.warning(
                "%s %s failed with HTTP %s (code %s)", service, operation, status, error_code(error)
            )
            if status == 429:
                telemetry.DEPENDENCY_THROTTLED.add(1, dependency=dependency)
                if backoff is not None:
                    backoff.hold(retry_after_seconds(response_headers(error)))
            unavailable(dependency, error)
        raise  # 400, 409…: a bug on our side, for the 500 handler to log.
    except Exception as error:
        if is_connection_error(error) or isinstance(error, connection_errors):
            telemetry.DEPENDENCY_TIMEOUTS.add(1, dependency=dependency)
            log.warning("%s %s failed: %s", service, operation, type(error).__name__)
            raise DependencyUnavailable(
                dependency, retry_after=DEFAULT_RETRY_AFTER_SECONDS
            ) from None
        raise


class _Closable(Protocol):
    async def close(self) -> None: ...


async def close_client(
    client: _Closable | None,
    owned_credential: Callable[[], AsyncTokenCredential | None] | None,
) -> None:
    """Close an adapter's SDK client, then the credential the adapter created itself (if any:
    a credential handed in belongs to whoever made it)."""
    if client is not None:
        await client.close()
    credential = owned_credential() if owned_credential else None
    close = getattr(credential, "close", None)
    if close is not None:
        await close()
