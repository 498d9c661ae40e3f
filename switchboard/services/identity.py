"""Identity & tokens: one ACS identity per app user, tokens for the caller only, erase on request.

Storage: `users/{userId}` holds the profile and the user's communicationUserId; `identities/
{communicationUserId}` is the reverse map (which app user an ACS identity belongs to). The
mapping is made race-safe with the store's conditional writes: concurrent first requests of one
user each create an ACS identity, exactly one wins the profile write, and the losers delete
the identity and reverse-map entry they made, so one user never ends up with two identities.

Erase (issue 19 §5) is final from its answer on. `DELETE /api/me` records the erasure first
(`users/{userId}/erasure`, the erasure record, and an `erasure` work item), deletes the ACS
identity (its tokens die with it) and the profile, and answers: a constant number of store
operations whatever the user owns. The `erasure` reconciler (`reconcile_erasure`) then asks
every capability to purge the user (`UserDataOwner.purge_user`) and removes the record when all
of them succeeded. While the record exists no profile and no ACS identity is created for the
user by anything (their own requests that would create one get a 409, `ErasureInProgress`,
with Retry-After, for those seconds); other capabilities never create either: `chat_identity` of a
user without a profile is NotFound unless it is the request's own caller.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict, cast

from switchboard import errors, telemetry
from switchboard.acs import KNOWN_SCOPES, TOKEN_MINUTES_MAX, TOKEN_MINUTES_MIN
from switchboard.logs import safe
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    IdentityNotFound,
    IdentityProvider,
    IssuedToken,
    PreconditionFailed,
    TeamsTokenRejected,
)
from switchboard.services.caller import Caller
from switchboard.services.hooks import ProfileInfo, ProfileObserver, UserDataOwner
from switchboard.services.reactions import Work
from switchboard.services.token_budget import (
    DEFAULT_BUDGET,
    TokenBudget,
    TokenLedger,
)

log = logging.getLogger("switchboard.identity")

USERS = "users"
IDENTITIES = "identities"
# `users/erasure:{userId}/erasure`: the erasure record. In a partition of its own: a profile is
# `users/{u}/{u}`, so no user id, not even "erasure" or "erasure:x", names the same document.
ERASURE_DOC_ID = "erasure"
ERASURE = "erasure"  # the work kind
# How soon a user whose erasure is still running may try again (seconds).
_ERASING_RETRY_AFTER = 2
# Clean purge passes before the erasure record goes (see `reconcile_erasure`).
_ERASURE_PASSES = 2


def erasure_pk(user_id: str) -> str:
    return f"erasure:{user_id}"


# How often a request retries the mapping after losing a race; losing twice in a row already
# means another request of the same user has finished and the next read sees its identity.
_MAPPING_ATTEMPTS = 3
_KNOWN_USERS_LIMIT = 50_000  # ~5 MB of ids at most
# An Entra object id: a GUID, matched whole (fullmatch: `$` would let "<guid>\n" through).
_OBJECT_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# An Entra access token is a few KiB; anything far larger is not one (and is not decoded).
_MAX_AAD_TOKEN_CHARS = 16 * 1024


class UserDoc(TypedDict):
    """`users/{userId}`: the profile of one app user and the ACS identity mapped to it."""

    id: str
    pk: str
    userId: str
    displayName: str
    displayNameSet: bool
    communicationUserId: str | None
    phoneNumber: str | None
    phoneVerified: bool
    createdAt: str
    # Random, set when the profile is created (absent on profiles older than it): copies of the
    # user elsewhere record it, so a reconciler tells this user from a later one of the same id.
    generation: NotRequired[str]
    # Set by the store on every read and write, never by us.
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class ErasureDoc(TypedDict):
    """`users/erasure:{userId}/erasure`: the user asked to be erased; the purge is under way.

    Kept until every capability has purged the user; meanwhile nothing creates a profile or an
    ACS identity for them. Holds only what finishing the erasure needs: the ACS identities to
    delete (a failed request leaves them to the reconciler).
    """

    id: str
    pk: str
    erasedAt: str
    communicationUserIds: list[str]
    # Clean purge passes done so far (absent: none).
    passes: NotRequired[int]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class IdentityDoc(TypedDict):
    """`identities/{communicationUserId}`: the reverse map, which app user an identity is."""

    id: str
    pk: str
    userId: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


# The store boundary: the store speaks untyped JSON; these containers are ours, so what we read
# back is what we wrote.
def _stored(doc: Doc) -> UserDoc:
    return cast(UserDoc, doc)


def _untyped(doc: UserDoc | IdentityDoc | ErasureDoc) -> Doc:
    return cast(Doc, doc)


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Server-side token policy: which scopes may be asked for and how long tokens live."""

    allowed_scopes: tuple[str, ...]
    default_minutes: int

    def resolve(
        self, scopes: Sequence[str] | None, expires_in_minutes: int | None
    ) -> tuple[list[str], timedelta]:
        """The scopes and lifetime to issue, or InvalidScope / ScopeNotAllowed / InvalidInput."""
        wanted = list(dict.fromkeys(scopes)) if scopes is not None else list(self.allowed_scopes)
        if not wanted:
            raise errors.InvalidInput("scopes: name at least one scope", field="scopes")
        for scope in wanted:
            if scope not in KNOWN_SCOPES:
                raise errors.InvalidScope(
                    f"scopes: '{scope[:32]}' is not an ACS scope; known: {', '.join(KNOWN_SCOPES)}",
                    field="scopes",
                )
            if scope not in self.allowed_scopes:
                raise errors.ScopeNotAllowed(
                    f"scopes: '{scope}' is not allowed here; allowed: "
                    f"{', '.join(self.allowed_scopes)}",
                    field="scopes",
                )
        minutes = self.default_minutes if expires_in_minutes is None else expires_in_minutes
        if not TOKEN_MINUTES_MIN <= minutes <= TOKEN_MINUTES_MAX:
            raise errors.InvalidInput(
                f"expiresInMinutes: must be {TOKEN_MINUTES_MIN} to {TOKEN_MINUTES_MAX}",
                field="expiresInMinutes",
            )
        return wanted, timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class UserToken:
    """An ACS token issued to the caller's identity, with the scopes it carries."""

    communication_user_id: str
    token: str
    expires_on: datetime
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class TeamsUserToken:
    """An ACS token for a Teams user (Teams interop), named by their Entra object id."""

    microsoft_teams_user_id: str
    token: str
    expires_on: datetime


@dataclass(frozen=True, slots=True)
class ProfileView:
    """The caller's profile as the API shows it, to the caller only: the verified number in full,
    so its owner can check it."""

    user_id: str
    display_name: str
    communication_user_id: str | None
    phone_number: str | None
    phone_verified: bool


class IdentityService:
    """Maps app users to ACS identities and issues, revokes and erases their tokens."""

    def __init__(
        self,
        store: DocumentStore,
        identities: IdentityProvider,
        policy: TokenPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        teams_client_id: str | None = None,
        user_data_owners: Sequence[UserDataOwner] = (),
        profile_observers: Sequence[ProfileObserver] = (),
        work: Work | None = None,
        token_budget: TokenBudget = DEFAULT_BUDGET,
    ) -> None:
        self._store = store
        # Work kind "identity": a user's ACS identity was mapped (their first token); what
        # seats them (their clubs' chat threads) follows.
        self._work = work
        # Work kind "erasure": an erase is always followed (a service built without the
        # runtime's work records it in the same store all the same).
        self._erasures = work or Work(store)
        self._ledger = TokenLedger(store, token_budget, clock)
        # Kept as given and iterated at use: the runtime hands in sequences built on first use.
        self._user_data_owners = user_data_owners
        self._profile_observers = profile_observers
        self._identities = identities
        self._policy = policy
        self._clock = clock
        self._teams_client_id = teams_client_id
        # Users whose profile this process has seen, so that `ensure_profile` costs a store
        # read once per user per process, not once per request. Bounded (least recently seen
        # out first). An erase on another instance leaves a stale entry here: the next token or
        # profile request of that user recreates the profile, as it would anyway.
        self._known_users: OrderedDict[str, None] = OrderedDict()

    # --- tokens -------------------------------------------------------------------------------

    async def issue_token(
        self, caller: Caller, scopes: Sequence[str] | None, expires_in_minutes: int | None
    ) -> UserToken:
        """A token for the caller's identity, creating the identity on first use, charged to
        the caller's token budget first (429 `token_rate_limited` past it).

        Known user: 1 store read (the profile) + 1 conditional write (the budget) + 1 ACS call;
        a user's first request in a process also reads their budget record. New user: 2 reads,
        3 creates, 1 ACS call.
        """
        wanted, lifetime = self._policy.resolve(scopes, expires_in_minutes)
        profile = await self._read_user(caller.user_id)
        record = await self._ledger.read(caller.user_id)
        await self._ledger.charge(caller.user_id, "acs", record)
        try:
            return await self._issue(caller, profile, wanted, lifetime)
        except errors.DependencyUnavailable as exc:
            if exc.dependency == "acs":  # throttling the resource (or down): the operator's sign
                telemetry.TOKENS_REFUSED.add(1, reason="acs_unavailable")
            raise

    async def _issue(
        self, caller: Caller, profile: UserDoc | None, wanted: list[str], lifetime: timedelta
    ) -> UserToken:
        for _ in range(_MAPPING_ATTEMPTS):
            acs_id = profile.get("communicationUserId") if profile else None
            if acs_id:
                try:
                    issued = await self._identities.issue_token(acs_id, wanted, lifetime)
                    _log_issue(caller.user_id, "acs", wanted, lifetime)
                    return _user_token(acs_id, issued, wanted)
                except IdentityNotFound:
                    # The identity was deleted behind our back (or an erase half-finished):
                    # map a fresh one in its place, under the same etag guard as a first time.
                    log.warning("ACS identity of a user is gone; mapping a new one")
            try:
                acs_id, issued = await self._map_new_identity(caller, profile, wanted, lifetime)
                _log_issue(caller.user_id, "acs", wanted, lifetime)
                return _user_token(acs_id, issued, wanted)
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                # Lost the race to another request of the same user (or to their erase): use
                # what it left.
                profile = await self._read_user(caller.user_id)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _map_new_identity(
        self, caller: Caller, profile: UserDoc | None, scopes: list[str], lifetime: timedelta
    ) -> tuple[str, IssuedToken]:
        """Create an identity + token and map it to the caller; undo it all if mapping fails.

        A first mapping (no profile yet) is refused while the user's erasure runs, before any
        identity is created.
        """
        if profile is None:
            await self._refuse_while_erasing(caller.user_id)
        if self._work is not None:
            async with self._work.following(("identity", caller.user_id)):
                return await self._map_new_identity_now(caller, profile, scopes, lifetime)
        return await self._map_new_identity_now(caller, profile, scopes, lifetime)

    async def _map_new_identity_now(
        self, caller: Caller, profile: UserDoc | None, scopes: list[str], lifetime: timedelta
    ) -> tuple[str, IssuedToken]:
        acs_id, issued = await self._identities.create_user_and_token(scopes, lifetime)
        try:
            # Reverse map first: if we stop between the two writes, the leftover is an unmapped
            # reverse entry (harmless), never a profile pointing at an identity nobody owns.
            reverse: IdentityDoc = {"id": acs_id, "pk": acs_id, "userId": caller.user_id}
            await self._store.create(IDENTITIES, _untyped(reverse))
            if profile is None:
                await self._store.create(USERS, _untyped(self._new_profile(caller, acs_id)))
                self._remember(caller.user_id)
            else:
                updated: UserDoc = {**profile, "communicationUserId": acs_id}
                await self._store.replace(USERS, _strip_system(updated), profile["_etag"])
        except BaseException:
            await self._discard_identity(acs_id)
            raise
        # Mapped. The identity it replaced (gone from ACS) leaves a stale reverse entry; removing
        # it is tidying, and must not undo the mapping above if the store hiccups now.
        previous = profile.get("communicationUserId") if profile else None
        if previous:
            try:
                await self._store.delete(IDENTITIES, previous, previous)
            except Exception:
                log.warning("could not remove a stale reverse-map entry", exc_info=True)
        return acs_id, issued

    async def _discard_identity(self, acs_id: str) -> None:
        """Best-effort undo of an identity this request created but could not map."""
        try:
            await self._store.delete(IDENTITIES, acs_id, acs_id)
        except Exception:
            log.warning("could not remove an unmapped reverse-map entry", exc_info=True)
        try:
            await self._identities.delete_user(acs_id)
        except Exception:
            log.warning("could not delete an unmapped ACS identity", exc_info=True)

    async def chat_identity(self, user_id: str, *, caller: Caller | None = None) -> tuple[str, str]:
        """(communicationUserId, displayName) of a user the controller puts in a chat thread.

        A user who never asked for a token has no ACS identity yet: one is mapped now, under the
        same race-safe rules as a first token (its token is not used). 1 read once mapped.
        A user without a profile is `errors.NotFound` (erased, or never signed in): no other
        user's request, and no reconciler, ever creates a profile or an identity for anyone
        (issue 19 §5). Only `caller`, the request's own caller when it is this user, gets their
        profile created here (their first request seats them in a chat before it registers them).
        """
        profile = await self._read_user(user_id)
        if profile is None and caller is not None and caller.user_id == user_id:
            profile = await self._get_or_create_profile(caller)
        for _ in range(_MAPPING_ATTEMPTS):
            if profile is None:
                raise errors.NotFound("No such user.")
            acs_id = profile.get("communicationUserId")
            if acs_id:
                return acs_id, profile["displayName"]
            try:
                acs_id, _ = await self._map_new_identity(
                    Caller(user_id), profile, ["chat"], timedelta(minutes=TOKEN_MINUTES_MIN)
                )
                return acs_id, profile["displayName"]
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                # Changed meanwhile: mapped by the user's own request, or erased (then the
                # replace found no profile and the identity made here was deleted again).
                profile = await self._read_user(user_id)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def revoke_tokens(self, caller: Caller) -> None:
        """Every token issued to the caller so far stops working."""
        profile = await self._get_or_create_profile(caller)
        acs_id = profile.get("communicationUserId")
        if acs_id:
            await self._identities.revoke_tokens(acs_id)

    async def exchange_teams_token(self, caller: Caller, aad_token: str) -> TeamsUserToken:
        """An ACS token for the Teams user whose Entra token this is (Teams interop).

        Any signed-in caller may exchange; holding the Teams user's Entra token is the proof,
        and ACS checks it (signature, app, tenant). Nothing is stored about the Teams user (Teams
        owns that identity); the exchange is charged to the caller's token budget, as an issue
        is: 1 conditional write (and a read the first time in a process) + 1 ACS call.
        """
        if not self._teams_client_id:
            raise errors.TeamsNotConfigured(
                "Teams token exchange is not configured on this server (TEAMS_CLIENT_ID)."
            )
        object_id = _entra_object_id(aad_token)
        record = await self._ledger.read(caller.user_id)
        await self._ledger.charge(caller.user_id, "teams", record)
        try:
            issued = await self._identities.exchange_teams_token(
                aad_token, self._teams_client_id, object_id
            )
        except TeamsTokenRejected as rejected:
            raise errors.InvalidTeamsToken(
                f"aadToken: refused ({rejected}); an Entra access token of the Teams user for "
                "this app and ACS, unexpired, is needed",
                field="aadToken",
            ) from None
        _log_issue(caller.user_id, "teams", ["teams"], None)
        return TeamsUserToken(object_id, issued.token, issued.expires_on)

    # --- profile ------------------------------------------------------------------------------

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, ProfileInfo]:
        """`Profiles.get_many`: the existing profiles of `user_ids`, one batched read."""
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        docs = await self._store.read_many(USERS, [(user_id, user_id) for user_id in wanted])
        return {
            doc["id"]: ProfileInfo(
                user_id=doc["id"],
                display_name=doc.get("displayName") or doc["id"],
                communication_user_id=doc.get("communicationUserId"),
                generation=doc.get("generation", ""),
            )
            for doc in docs
        }

    async def call_contact(self, user_id: str) -> tuple[str | None, str | None] | None:
        """(communicationUserId, verified phone number or None) of a user, or None without a
        profile: what a friend's call-info shows (one read; the friends capability checks who
        may see it)."""
        doc = await self._store.read(USERS, user_id, user_id)
        if doc is None:
            return None
        number = doc.get("phoneNumber") if doc.get("phoneVerified") is True else None
        return doc.get("communicationUserId"), number

    async def ensure_profile(self, caller: Caller) -> None:
        """Create the caller's profile on their first request (docs/identity.md); cheap after."""
        if caller.user_id in self._known_users:
            self._known_users.move_to_end(caller.user_id)
            return
        await self._get_or_create_profile(caller)

    def _remember(self, user_id: str) -> None:
        self._known_users[user_id] = None
        self._known_users.move_to_end(user_id)
        while len(self._known_users) > _KNOWN_USERS_LIMIT:
            self._known_users.popitem(last=False)

    async def get_profile(self, caller: Caller) -> ProfileView:
        return _view(await self._get_or_create_profile(caller))

    async def update_profile(self, caller: Caller, display_name: str) -> ProfileView:
        for _ in range(_MAPPING_ATTEMPTS):
            profile = await self._get_or_create_profile(caller)
            updated: UserDoc = {**profile, "displayName": display_name, "displayNameSet": True}
            try:
                saved = await self._store.replace(USERS, _strip_system(updated), profile["_etag"])
                view = _view(_stored(saved))
                break
            except PreconditionFailed:
                continue  # a concurrent write (e.g. the first token) landed: re-read, re-apply
        else:
            raise errors.DependencyUnavailable("store", retry_after=1)
        # After the save: an observer that fails fails the request, and its retry re-applies.
        for observer in self._profile_observers:
            await observer.profile_changed(view.user_id, view.display_name)
        return view

    async def set_phone(self, caller: Caller, number: str | None) -> ProfileView:
        """Set (or clear) the caller's verified phone number: the phone service calls this once
        the number's code is right."""
        for _ in range(_MAPPING_ATTEMPTS):
            profile = await self._get_or_create_profile(caller)
            updated: UserDoc = {
                **profile,
                "phoneNumber": number,
                "phoneVerified": number is not None,
            }
            try:
                saved = await self._store.replace(USERS, _strip_system(updated), profile["_etag"])
            except PreconditionFailed:
                continue
            return _view(_stored(saved))
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def erase(self, caller: Caller) -> None:
        """Erase the caller, final from the answer on (issue 19 §5); O(1) in store operations.

        The erasure record and its work go first (`following`): from then on nothing creates a
        profile or an identity for the user, and a crash anywhere below leaves work that finishes
        the job. Then the profile goes (other capabilities see the user as gone through
        `Profiles.get_many`), then the ACS identity (its tokens die with it) and its reverse
        map. The `erasure` reconciler purges the rest in the background. If ACS is down the
        caller gets the 503, the user is gone all the same, and the reconciler deletes the
        identity once ACS answers; a retried DELETE is harmless. Store: 1 read_many, 1 upsert
        (record) + 2 work writes, 1 delete (profile), 1 delete per ACS identity (reverse map).
        """
        try:
            user_id = caller.user_id
            async with self._erasures.following((ERASURE, user_id)):
                profile, record = await self._read_profile_and_record(user_id)
                erasure: ErasureDoc = {
                    "id": ERASURE_DOC_ID,
                    "pk": erasure_pk(user_id),
                    "erasedAt": self._clock().isoformat(),
                    "communicationUserIds": list(record["communicationUserIds"]) if record else [],
                }
                await self._erase_profile(user_id, profile, erasure, write=True)
        finally:
            # Forgotten whatever happened: the next request re-checks the store.
            self._known_users.pop(caller.user_id, None)

    async def _erase_profile(
        self, user_id: str, profile: UserDoc | None, record: ErasureDoc, *, write: bool
    ) -> None:
        """Delete the profile, then every ACS identity it or the record names, with its reverse
        map. The record lists an identity before the profile that names it is deleted, so a
        crash in between leaves it to the reconciler. The profile is deleted under its etag: a
        token request that mapped a new identity meanwhile makes this go round again."""
        for _ in range(_MAPPING_ATTEMPTS):
            acs_id = profile.get("communicationUserId") if profile else None
            if acs_id and acs_id not in record["communicationUserIds"]:
                record["communicationUserIds"].append(acs_id)
                write = True
            if write:
                saved = await self._store.upsert(USERS, _untyped(_strip_record(record)))
                record["_etag"] = saved["_etag"]
                write = False
            if profile is None:
                break
            try:
                await self._store.delete(USERS, user_id, user_id, profile["_etag"])
                break
            except PreconditionFailed:
                profile = await self._read_user(user_id)
            except DocumentNotFound:
                break
        else:
            raise errors.DependencyUnavailable("store", retry_after=1)
        self._known_users.pop(user_id, None)
        for acs_id in record["communicationUserIds"]:
            await self._identities.delete_user(acs_id)  # deleting a missing one is no error
            await self._store.delete(IDENTITIES, acs_id, acs_id)

    async def reconcile_erasure(self, user_id: str) -> None:
        """The `erasure` reconciler: finish an erasure the record says was asked for.

        Identity's own part first (the ACS identities the record lists, any profile left by a
        request that failed half-way), then every capability's `purge_user`; each runs even if
        another failed, and the first failure is raised so the reactor retries the whole pass
        (every step is idempotent).

        Two clean passes (issue 19 §5: "until a pass finds nothing left"): another user's request
        that checked the victim just before the erase may still write a copy naming them just
        after the first pass (seen across two instances on Cosmos). So the first clean pass keeps
        the record and re-arms the work, due after the grace period (`Work.before`); the second
        pass, seconds later, removes what raced past the first, then the record. A new erase of
        the same user meanwhile changed the record's etag and re-armed the work: the record stays
        for that erase's passes.
        """
        raw = await self._store.read(USERS, erasure_pk(user_id), ERASURE_DOC_ID)
        if raw is None:
            return  # finished by an earlier run
        record = cast(ErasureDoc, raw)
        failures: list[Exception] = []
        try:
            await self.purge_user(user_id, record)
        except Exception as exc:
            failures.append(exc)
        for owner in self._user_data_owners:
            try:
                await owner.purge_user(user_id)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        # Missed when the user was erased again meanwhile: that erase's passes remove it.
        with contextlib.suppress(PreconditionFailed, DocumentNotFound):
            if record.get("passes", 0) < _ERASURE_PASSES - 1:
                done = _strip_record(record)
                done["passes"] = record.get("passes", 0) + 1
                await self._store.replace(USERS, _untyped(done), record["_etag"])
                await self._erasures.before(ERASURE, user_id)  # the next pass, after the grace
                return
            await self._store.delete(USERS, record["pk"], record["id"], record["_etag"])
        log.info("erasure finished")

    async def purge_user(self, user_id: str, record: ErasureDoc | None = None) -> None:
        """Identity's own data of an erased user: a profile a failed erase request left (none
        can have been made since: the record refuses it), the ACS identities the record lists,
        with their reverse maps (the token budget's record stays until its TTL: see below)."""
        if record is None:
            raw = await self._store.read(USERS, erasure_pk(user_id), ERASURE_DOC_ID)
            if raw is None:
                return  # not being erased: a profile that exists now is a live user's
            record = cast(ErasureDoc, raw)
        await self._erase_profile(user_id, await self._read_user(user_id), record, write=False)
        # The token budget's record stays: erase must not reset the budget (a user looping
        # erase + sign-in would otherwise spend everyone's ACS allowance). It holds only
        # timestamps, and its TTL removes it one budget window after its last use.

    async def _read_profile_and_record(
        self, user_id: str
    ) -> tuple[UserDoc | None, ErasureDoc | None]:
        docs = await self._store.read_many(
            USERS, [(user_id, user_id), (erasure_pk(user_id), ERASURE_DOC_ID)]
        )
        profile = next((d for d in docs if d["pk"] == user_id), None)
        record = next((d for d in docs if d["pk"] == erasure_pk(user_id)), None)
        return (
            None if profile is None else _stored(profile),
            None if record is None else cast(ErasureDoc, record),
        )

    async def _refuse_while_erasing(self, user_id: str) -> None:
        """409 (`ErasureInProgress`, with Retry-After) while the user's erasure runs: a profile
        or identity made now would be purged with the rest, or outlive the purge of its data."""
        if await self._store.read(USERS, erasure_pk(user_id), ERASURE_DOC_ID) is not None:
            raise errors.ErasureInProgress(retry_after=_ERASING_RETRY_AFTER)

    async def _read_user(self, user_id: str) -> UserDoc | None:
        doc = await self._store.read(USERS, user_id, user_id)
        if doc is None:
            return None
        self._remember(user_id)
        return _stored(doc)

    async def _get_or_create_profile(self, caller: Caller) -> UserDoc:
        profile = await self._read_user(caller.user_id)
        if profile is not None:
            return profile
        await self._refuse_while_erasing(caller.user_id)
        try:
            created = await self._store.create(USERS, _untyped(self._new_profile(caller, None)))
            self._remember(caller.user_id)
            return _stored(created)
        except DocumentExists:
            existing = await self._read_user(caller.user_id)
            if existing is None:  # created and erased in between: vanishingly rare
                raise errors.DependencyUnavailable("store", retry_after=1) from None
            return existing

    def _new_profile(self, caller: Caller, acs_id: str | None) -> UserDoc:
        return {
            "id": caller.user_id,
            "pk": caller.user_id,
            "userId": caller.user_id,
            "displayName": (caller.name or caller.user_id)[:64],
            "displayNameSet": False,
            "communicationUserId": acs_id,
            "phoneNumber": None,
            "phoneVerified": False,
            "createdAt": self._clock().isoformat(),
            "generation": secrets.token_hex(8),
        }


def _entra_object_id(token: str) -> str:
    """The `oid` claim of an Entra token, read without verifying it: ACS verifies it, and needs
    the object id alongside. A token that is not a JWT with an oid is refused here."""
    parts = token.split(".")
    try:
        if len(parts) != 3 or len(token) > _MAX_AAD_TOKEN_CHARS:
            raise ValueError("not a JWT")
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        # RecursionError: a payload of deeply nested JSON (a 500 before, issue 18 §5).
        claims = json.loads(base64.urlsafe_b64decode(payload))
        object_id = claims["oid"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise errors.InvalidTeamsToken(
            "aadToken: not an Entra access token with an oid claim", field="aadToken"
        ) from None
    if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
        raise errors.InvalidTeamsToken("aadToken: its oid is not an object id", field="aadToken")
    return object_id


def _log_issue(user_id: str, kind: str, scopes: Sequence[str], lifetime: timedelta | None) -> None:
    """The audit line of one issue: who, which kind and scopes, how long; never the token."""
    minutes = f"{int(lifetime.total_seconds() // 60)}" if lifetime else "-"
    telemetry.TOKENS_ISSUED.add(1)
    log.info(
        "token issued: user=%s kind=%s scopes=%s minutes=%s",
        safe(user_id),
        kind,
        ",".join(scopes),
        minutes,
    )


def _user_token(acs_id: str, issued: IssuedToken, scopes: list[str]) -> UserToken:
    return UserToken(acs_id, issued.token, issued.expires_on, scopes)


def _strip_record(doc: ErasureDoc) -> ErasureDoc:
    return cast(ErasureDoc, {k: v for k, v in doc.items() if not k.startswith("_")})


def _strip_system(doc: UserDoc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _view(profile: UserDoc) -> ProfileView:
    return ProfileView(
        user_id=profile["userId"],
        display_name=profile["displayName"],
        communication_user_id=profile.get("communicationUserId"),
        phone_number=profile.get("phoneNumber"),
        phone_verified=bool(profile.get("phoneVerified")),
    )
