"""Switchboard's Azure Functions app: composition only. Each capability is one blueprint."""

import os

import azure.functions as func

from blueprints import (
    calls,
    chat,
    clubs,
    friends,
    identity,
    meetings,
    phone,
    push,
    reactions,
    system,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in (
    system.bp,
    identity.bp,
    friends.bp,
    clubs.bp,
    meetings.bp,
    phone.bp,
    push.bp,
    calls.bp,
    chat.bp,
):
    app.register_functions(blueprint)
# The Cosmos DB change feed trigger and the sweep drain the reaction work in Azure; embedded,
# the devserver's worker does (a SQLite store has no change feed).
if reactions.enabled():
    app.register_functions(reactions.bp)

# The dev routes (dev sign-in, the local outboxes) only in dev mode: AUTH_MODE unset or `dev`
# (the settings' default) and not in Azure, where the settings refuse dev mode with a clear
# message on the first request and a publish does not even ship `switchboard/dev/`.
if os.environ.get("AUTH_MODE", "").strip() in ("", "dev") and not os.environ.get(
    "WEBSITE_INSTANCE_ID"
):
    from switchboard.dev import routes as dev

    dev.compose(app)
