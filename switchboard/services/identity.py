"""Identity & tokens: one ACS identity per app user, tokens for the caller only, erase on request.

Storage: `users/{userId}` holds the profile and the user's communicationUserId; `identities/
{communicationUserId}` is the reverse map (which app user an ACS identity belongs to). The
mapping is made race-safe with the store's conditional writes: concurrent first requests of one
user each create an ACS identity, exactly one wins the profile write, and the losers delete
the identity and reverse-map entry they made, so one user never ends up with two identities.
"""

from __future__ import annotations

import base64
import binascii
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
from switchboard.services.token_budget import DEFAULT_BUDGET, TokenBudget, TokenLedger

log = logging.getLogger("switchboard.identity")

USERS = "users"
IDENTITIES = "identities"
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


def _untyped(doc: UserDoc | IdentityDoc) -> Doc:
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
            except (DocumentExists, PreconditionFailed):
                # Lost the race to another request of the same user: use what it mapped.
                profile = await self._read_user(caller.user_id)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _map_new_identity(
        self, caller: Caller, profile: UserDoc | None, scopes: list[str], lifetime: timedelta
    ) -> tuple[str, IssuedToken]:
        """Create an identity + token and map it to the caller; undo it all if mapping fails."""
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

    async def chat_identity(self, user_id: str) -> tuple[str, str]:
        """(communicationUserId, displayName) of a user the controller puts in a chat thread.

        A user who never asked for a token has no ACS identity yet: one is mapped now, under the
        same race-safe rules as a first token (its token is not used). 1 read once mapped.
        """
        profile = await self._read_user(user_id)
        for _ in range(_MAPPING_ATTEMPTS):
            acs_id = profile.get("communicationUserId") if profile else None
            if acs_id and profile is not None:
                return acs_id, profile["displayName"]
            try:
                acs_id, _ = await self._map_new_identity(
                    Caller(user_id), profile, ["chat"], timedelta(minutes=TOKEN_MINUTES_MIN)
                )
                return acs_id, profile["displayName"] if profile else user_id
            except (DocumentExists, PreconditionFailed):
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
        """Erase the caller: ACS identity deleted (its tokens die), profile and mapping removed.

        The other capabilities' data goes first (each `UserDataOwner`, in order), then the ACS
        identity: while the profile stays, a failed erase can be retried and finishes the job
        (each step is idempotent). If ACS is down the profile is not removed.
        The profile is deleted only if unchanged since it was read: a token request that mapped
        a new identity meanwhile makes the erase go round again and delete that one too.
        """
        try:
            await self._erase(caller)
        finally:
            # Forgotten whatever happened: the next request re-checks the store.
            self._known_users.pop(caller.user_id, None)

    async def _erase(self, caller: Caller) -> None:
        # Owners run even without a profile: their data need not hang off one.
        for owner in self._user_data_owners:
            await owner.erase_user(caller.user_id)
        for _ in range(_MAPPING_ATTEMPTS):
            profile = await self._read_user(caller.user_id)
            if profile is None:
                return
            acs_id = profile.get("communicationUserId")
            if acs_id:
                await self._identities.delete_user(acs_id)
                await self._store.delete(IDENTITIES, acs_id, acs_id)
            try:
                await self._store.delete(USERS, caller.user_id, caller.user_id, profile["_etag"])
                return
            except PreconditionFailed:
                continue
        raise errors.DependencyUnavailable("store", retry_after=1)

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
