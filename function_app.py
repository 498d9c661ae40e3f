"""Switchboard's Azure Functions app: composition only. Each capability is one blueprint."""

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
