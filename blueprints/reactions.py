"""The reaction layer in Azure: the Cosmos DB trigger on the `work` container and the timer sweep.

Every write of a work item (recorded before a change, marked due after it, re-armed by a change
during a run, retried after a failure) reaches `work_feed` through the container's change feed;
the reactor re-reads each item and runs the due ones (`Reactor.run_documents`). What the feed
cannot catch — an item recorded before a change whose request then died (due only after the
grace period, with no later write), a retry whose backoff ended, a claim whose runner died — is
run by `work_sweep`, a timer every 10 seconds (`Reactor.run_due`). Both are idempotent: the
reactor claims each item under its etag, so the feed and the sweep on many instances never run
one item at once.

The trigger reads the feed with the app's managed identity: the connection is the identity-based
settings `COSMOS__accountEndpoint`, `COSMOS__credential` (managedidentity) and `COSMOS__clientId`
(infra/modules/functionapp.bicep), and the identity's Cosmos DB Built-in Data Contributor role on
the database covers the `work` container and the trigger's `leases` container
(infra/modules/cosmos.bicep).

Registered only when the store is Cosmos DB (`enabled`): embedded, the devserver runs the same
reactor as a background worker, and `func start` on SQLite has no feed to listen to.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import azure.functions as func

from switchboard import errors, telemetry
from switchboard.runtime import get_runtime

if TYPE_CHECKING:  # annotations only
    from switchboard.services.reactions import Reactor

log = logging.getLogger("switchboard.reactions")

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure.functions leaves it untyped

# The app setting prefix of the trigger's identity-based connection (COSMOS__accountEndpoint...).
CONNECTION = "COSMOS"
WORK_CONTAINER = "work"
LEASES_CONTAINER = "leases"
SWEEP_SCHEDULE = "*/10 * * * * *"  # NCRONTAB with seconds: every 10 s
# A sweep stops starting new batches after this long, leaving the rest to the next one.
SWEEP_BUDGET_SECONDS = 8.0
SWEEP_BATCH = 100


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether these functions belong in the app: only with the Cosmos DB store.

    Read from the environment directly, not from Settings: deciding which functions exist must
    not load (and validate) every setting at import, which would cost every cold start.
    """
    return environ.get("SWITCHBOARD_STORE", "").strip().lower() == "cosmos"


@bp.function_name("work_feed")
@bp.cosmos_db_trigger(
    arg_name="docs",
    connection=CONNECTION,
    database_name="%COSMOS_DATABASE%",
    container_name=WORK_CONTAINER,
    lease_container_name=LEASES_CONTAINER,
    create_lease_container_if_not_exists=False,  # infra declares it; the app has no control plane
    feed_poll_delay=1000,  # ms between polls once the feed is drained: work runs within ~1 s
)
async def work_feed(docs: func.DocumentList) -> None:
    """Run the work items this batch of the change feed carries that are due now."""
    items = [doc.to_dict() for doc in docs]
    try:
        ran = await get_runtime().reactor.run_documents(items)
    except errors.DependencyUnavailable:
        # Nothing is lost: the items stay in the store until done, and the sweep runs them.
        log.warning("work feed: the store is unavailable; the sweep will run these items")
        return
    log.info("work feed: %d of %d items ran", ran, len(items))


@bp.function_name("work_sweep")
@bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
async def work_sweep(timer: func.TimerRequest) -> None:
    """Run due work the feed could not (see the module's docstring), in batches, within budget."""
    await sweep()


async def sweep(budget_seconds: float = SWEEP_BUDGET_SECONDS) -> int:
    """Run due work until none is left or the budget is spent; how many items ran."""
    reactor = get_runtime().reactor
    started = time.monotonic()
    total = 0
    try:
        while time.monotonic() - started < budget_seconds:
            ran = await reactor.run_due(SWEEP_BATCH)
            total += ran
            if ran < SWEEP_BATCH:
                break
    except errors.DependencyUnavailable:
        log.warning("work sweep: the store is unavailable; the next sweep tries again")
    if total:
        log.info("work sweep: %d items ran", total)
    await _observe_backlog(reactor)
    return total


_BACKLOG_EVERY_SECONDS = 60.0
_observed_at = [-_BACKLOG_EVERY_SECONDS]


async def _observe_backlog(reactor: Reactor) -> None:
    """Once a minute, with telemetry on: the backlog's gauges (oldest due item's age, parked
    items) read for the alerts, so they move even when nobody probes GET /api/health."""
    now = time.monotonic()
    if not telemetry.enabled() or now - _observed_at[0] < _BACKLOG_EVERY_SECONDS:
        return
    _observed_at[0] = now
    try:
        await reactor.backlog()  # sets the gauges
    except errors.DependencyUnavailable:
        log.warning("work sweep: the backlog could not be read")
