"""The process's object graph: adapters chosen by settings, built once, lazily, and the services.

Handlers ask `get_runtime()` for it. The first call builds it (so `import function_app` stays
cheap and imports no Azure SDK but azure.functions); each adapter then creates its SDK client on
first use and keeps it for the life of the process. Adapters are built by keyword into one
frozen `Adapters`; services are built from them on first use. Tests replace one adapter
(`dataclasses.replace(adapters, store=...)`) and install the runtime with `set_runtime`;
nothing is patched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, overload

if TYPE_CHECKING:
    # Imported for real inside the builders: PyJWT, cryptography and pydantic cost
    # ~150 ms of cold start that a Functions instance should pay on first request, not import.
    from switchboard.auth import Authenticator, LocalIssuer
    from switchboard.ports import (
        ChatProvider,
        DocumentStore,
        IdentityProvider,
        MeetingProvider,
        PushSender,
        RoomsProvider,
        SmsSender,
    )
    from switchboard.services.caller import Caller
    from switchboard.services.calls import CallsService
    from switchboard.services.chat import ChatService
    from switchboard.services.clubs import ClubsService
    from switchboard.services.friends import FriendsService
    from switchboard.services.health import HealthService
    from switchboard.services.hooks import (
        MeetingObserver,
        ProfileInfo,
        ProfileObserver,
        UserDataOwner,
    )
    from switchboard.services.identity import IdentityService
    from switchboard.services.meetings import MeetingsService
    from switchboard.services.phone import PhoneService
    from switchboard.services.push import PushService
    from switchboard.services.reactions import Reactor, Reconciler, Work
    from switchboard.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Adapters:
    """The adapters of one process, named: a test replaces one with `dataclasses.replace`."""

    store: DocumentStore
    identity_provider: IdentityProvider
    authenticator: Authenticator
    dev_issuer: LocalIssuer | None = None
    # None: the runtime builds the one the settings describe at first use (tests leave it out).
    chat_provider: ChatProvider | None = None
    # None: meetings cannot be scheduled here (Azure without Graph); import still works.
    meeting_provider: MeetingProvider | None = None
    # None: SMS is not configured (in Azure without SMS_FROM); the SMS routes answer 404.
    sms_sender: SmsSender | None = None
    # None: built from the settings on first use (the Runtime's `push_sender`); still None in
    # Azure without a Notification Hub (pushes off, the device routes say so).
    push_sender: PushSender | None = None
    # None: built from the settings on first use (the Runtime's `rooms_provider`), and only in
    # CLUB_CALLS=rooms mode.
    rooms_provider: RoomsProvider | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Adapters:
        """The adapters the settings describe; adapter modules are imported only when chosen."""
        dev_issuer = build_dev_issuer(settings)
        store = build_store(settings)
        identity_provider = build_identity_provider(settings)
        return cls(
            store=store,
            identity_provider=identity_provider,
            authenticator=build_authenticator(settings, dev_issuer),
            dev_issuer=dev_issuer,
            chat_provider=build_chat_provider(settings, store, identity_provider),
            meeting_provider=build_meeting_provider(settings),
            sms_sender=build_sms_sender(settings),
            push_sender=build_push_sender(settings),
        )


T = TypeVar("T")


class _Later(Sequence[T]):
    """A sequence built on first use: the identity service's hooks, so that building it does
    not build (and import) every other capability's service."""

    def __init__(self, build: Callable[[], Sequence[T]]) -> None:
        self._build = build

    @functools.cached_property
    def _items(self) -> Sequence[T]:
        return self._build()

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)


class _FriendsLater:
    """The clubs' and meetings' view of friends (`clubs.Relations`, `meetings.Blocks`), resolved
    at use: the friends service is built with chat as its observer, and chat follows clubs."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def accepted_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        return await self._runtime.friends.accepted_among(user_id, others)

    async def blocked_by(self, user_id: str, other_id: str) -> bool:
        return await self._runtime.friends.blocked_by(user_id, other_id)

    async def blockers_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        return await self._runtime.friends.blockers_among(user_id, others)


class Runtime:
    """Settings, adapters and services of one process; each service is built on first use.

    A new capability adds its service here as one more `cached_property`, and, if it keeps data
    about users, one entry in `user_data_owners` so that DELETE /api/me erases it too (and one in
    `profile_observers` if it copies display names).
    """

    def __init__(self, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        self.adapters = adapters

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, Adapters.from_settings(settings))

    @functools.cached_property
    def chat_provider(self) -> ChatProvider:
        return self.adapters.chat_provider or build_chat_provider(
            self.settings, self.adapters.store, self.adapters.identity_provider
        )

    @functools.cached_property
    def push_sender(self) -> PushSender | None:
        return self.adapters.push_sender or build_push_sender(self.settings)

    @functools.cached_property
    def rooms_provider(self) -> RoomsProvider | None:
        """ACS Rooms (or the local provider) when clubs call in rooms (CLUB_CALLS=rooms)."""
        if self.settings.club_calls != "rooms":
            return None
        return self.adapters.rooms_provider or build_rooms_provider(self.settings)

    # --- the reaction layer --------------------------------------------------------------------

    @functools.cached_property
    def work(self) -> Work:
        """Durable follow-up work: services record what must follow a change (reactions.py)."""
        from switchboard.services.reactions import Work

        return Work(self.adapters.store)

    @functools.cached_property
    def reactions(self) -> dict[str, Reconciler]:
        """THE table of the reaction layer: which reconciler each kind of work runs.

        A change records work of a kind (`work.following((kind, key))`); the reactor runs the
        reconciler named here with the key. Every reconciler is idempotent and level-triggered:
        it reads the truth and makes the copies agree. A failure is retried with backoff
        (2, 4, 8 … s, at most 5 min) and parked after 8 attempts (logged; counted in health).
        docs/reactions.md explains each kind. One line per kind: the key, and what a failure
        leaves until the retry succeeds.
        """
        return {
            # user id; failing: the erasure record stays, the user's next sign-in waits (409)
            "erasure": self.identity.reconcile_erasure,
            # Clubs (docs/reactions.md "Clubs"): one user's records and copies in one club; a
            # club's count, owner, purge; its chat seats and listings; its call's index and pushes;
            # a user's new ACS identity seats them in their clubs' threads.
            "club-member": self.clubs.reconcile_member,
            "club": self.clubs.reconcile_club,
            "club-chat": self.chat.reconcile_club_thread,
            "call": self.calls.reconcile_call,
            "identity": self.clubs.reconcile_identity,
            # Friends, chat and meetings (docs/reactions.md "Friends, chat and meetings"):
            # key "<userA>\n<userB>" (sorted); both side documents and the direct chat thread
            # follow the pair document. Failing: a side or the thread lags; access (call-info,
            # `PUT …/thread`) always reads the pair document, so it never grants too much.
            "pair": self.friends.reconcile_pair,
            # key: the meeting id; agenda entries and chat listings follow the meeting; an
            # erased participant leaves it. Failing: an invitee's agenda lags the meeting.
            "meeting": self.meetings.reconcile_meeting,
        }

    @functools.cached_property
    def reactor(self) -> Reactor:
        from switchboard.services.reactions import Reactor

        return Reactor(self.adapters.store, self.reactions, self.work)

    # --- services -----------------------------------------------------------------------------

    @functools.cached_property
    def user_data_owners(self) -> tuple[UserDataOwner, ...]:
        """Every service that keeps data about a user, purged by the `erasure` reconciler after
        DELETE /api/me (identity's own part runs first, in `reconcile_erasure`)."""
        # Chat last: ending friendships, leaving clubs and meetings tell chat, which then
        # cleans the rest.
        return (self.friends, self.clubs, self.meetings, self.phone, self.push, self.chat)

    @functools.cached_property
    def profile_observers(self) -> tuple[ProfileObserver, ...]:
        """Every service that keeps a copy of display names, told when one changes. Friends
        keep none: a list page reads names with one `Profiles.get_many`."""
        return ()

    @functools.cached_property
    def meeting_observers(self) -> tuple[MeetingObserver, ...]:
        """Every service told when a meeting is scheduled or cancelled (chat: meeting chats)."""
        return (self.chat,)

    @functools.cached_property
    def meetings(self) -> MeetingsService:
        from switchboard.services.meetings import MeetingsService

        return MeetingsService(
            self.adapters.store,
            self.adapters.meeting_provider,
            profiles=self.identity,
            work=self.work,
            blocks=_FriendsLater(self),
            observers=self.meeting_observers,
        )

    @functools.cached_property
    def clubs(self) -> ClubsService:
        from switchboard.services.clubs import ClubsService

        return ClubsService(
            self.adapters.store,
            work=self.work,
            profiles=self.identity,
            ensure_profile=self._ensure_profile,
            relations=_FriendsLater(self),
            call_idle_hours=self.settings.call_idle_hours,
            # CLUB_CALLS=rooms: calls are ACS rooms whose roster takes members' ACS identities.
            rooms=self.rooms_provider,
            acs_identity=self._acs_identity,
        )

    async def _acs_identity(self, user_id: str) -> str:
        """A caller's own ACS identity (mapped now if they never asked for a token): the one
        clubs put on a room's roster."""
        acs_id, _ = await self.identity.chat_identity(user_id)
        return acs_id

    async def _ensure_profile(self, user_id: str) -> ProfileInfo | None:
        """A caller's own profile, made now if this is their first request (clubs record its
        generation in the caller's new member record)."""
        from switchboard.services.caller import Caller

        await self.identity.ensure_profile(Caller(user_id))
        return (await self.identity.get_many([user_id])).get(user_id)

    @functools.cached_property
    def identity(self) -> IdentityService:
        from switchboard.services.identity import IdentityService, TokenPolicy

        return IdentityService(
            self.adapters.store,
            self.adapters.identity_provider,
            TokenPolicy(self.settings.token_scopes, self.settings.token_ttl_minutes),
            teams_client_id=self.settings.teams_client_id,
            token_budget=self.settings.token_budget,
            # Built when first needed (an erase, a rename), not with the identity service: a
            # new instance's first token then loads no other capability's service.
            user_data_owners=_Later(lambda: self.user_data_owners),
            profile_observers=_Later(lambda: self.profile_observers),
            work=self.work,
        )

    @functools.cached_property
    def friends(self) -> FriendsService:
        from switchboard.services.friends import FriendsService

        return FriendsService(
            self.adapters.store,
            profiles=self.identity,
            work=self.work,
            contact=lambda user_id: self.identity.call_contact(user_id),
            # At call time: chat is built with this service's `are_friends`.
            direct_threads=lambda a, b: self.chat.reconcile_direct(a, b),
            pstn_caller_id=self.settings.pstn_caller_id,
        )

    @functools.cached_property
    def chat(self) -> ChatService:
        from switchboard.services.caller import CURRENT_CALLER
        from switchboard.services.chat import LOCAL_ENDPOINT, ChatService, ClientConfigView

        return ChatService(
            self.adapters.store,
            self.chat_provider,
            # Looked up at call time: the identity service lists this one as a data owner.
            # The request's caller goes along: only their own request may create their profile.
            lambda user_id: self.identity.chat_identity(user_id, caller=CURRENT_CALLER.get()),
            # Also at call time: the friends service lists this one as an observer.
            are_friends=lambda user_id, other_id: self.friends.are_friends(user_id, other_id),
            clubs=self.clubs,
            profiles=self.identity,
            work=self.work,
            client_config=ClientConfigView(
                self.settings.acs_resource_endpoint or LOCAL_ENDPOINT,
                self.settings.token_scopes,
                self.settings.pstn_caller_id,
            ),
        )

    @functools.cached_property
    def push(self) -> PushService:
        from switchboard.services.push import PushService

        return PushService(self.adapters.store, self.push_sender)

    @functools.cached_property
    def calls(self) -> CallsService:
        """ACS call events, and the index and pushes that follow a club's call."""
        from switchboard.services.calls import CallsService

        return CallsService(
            self.adapters.store,
            registry=self.clubs,
            work=self.work,
            profiles=self.identity,
            pushes=self.push if self.push_sender is not None else None,
        )

    @functools.cached_property
    def phone(self) -> PhoneService:
        from switchboard.services.phone import PhoneService
        from switchboard.settings import sms_countries

        app_url = self.settings.public_app_url
        if app_url is None and not self.settings.running_in_azure:
            app_url = LOCAL_APP_URL  # the devserver serves the web client at its root
        return PhoneService(
            self.adapters.store,
            self.adapters.sms_sender,
            lambda: self.identity,  # late: identity lists this service among its data owners
            daily_invites=self.settings.sms_daily_limit,
            allowed_countries=sms_countries(
                self.settings.sms_allowed_countries, self.settings.sms_from
            ),
            app_url=app_url,
            club_access=self.clubs.require_member,
            meeting_access=self.meetings.require_participant,
        )

    @functools.cached_property
    def health(self) -> HealthService:
        from switchboard.services.health import HealthService

        # Looked up at probe time: the reactor's table builds every capability's service.
        return HealthService(self.adapters.store, backlog=lambda: self.reactor.backlog())

    # --- process ------------------------------------------------------------------------------

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        return await self.adapters.authenticator.authenticate(headers)

    async def register(self, caller: Caller) -> None:
        """A user exists from their first authenticated request: make sure of their profile."""
        await self.identity.ensure_profile(caller)

    def describe(self) -> dict[str, str]:
        """Which adapters run (names only, never endpoints or keys): health and logs."""
        return {
            "store": self.settings.switchboard_store,
            "identity": "acs" if self.settings.uses_azure_identity else "local",
            "auth": self.settings.auth_mode,
        }

    async def close(self) -> None:
        if "chat_provider" in self.__dict__ or self.adapters.chat_provider is not None:
            await self.chat_provider.close()
        await self.adapters.store.close()
        await self.adapters.identity_provider.close()
        if self.adapters.meeting_provider is not None:
            await self.adapters.meeting_provider.close()
        if self.adapters.sms_sender is not None:
            await self.adapters.sms_sender.close()
        sender = self.adapters.push_sender or self.__dict__.get("push_sender")
        if sender is not None:
            await sender.close()
        rooms = self.adapters.rooms_provider or self.__dict__.get("rooms_provider")
        if rooms is not None:
            await rooms.close()


def build_store(settings: Settings) -> DocumentStore:
    if settings.switchboard_store == "cosmos":
        from switchboard.adapters.cosmos_store import CosmosStore

        assert settings.cosmos_endpoint  # enforced by Settings
        return CosmosStore.from_settings(
            endpoint=settings.cosmos_endpoint,
            database=settings.cosmos_database,
            key=settings.cosmos_key.get_secret_value() if settings.cosmos_key else None,
            managed_identity_client_id=settings.azure_client_id,
        )
    from switchboard.adapters.sqlite_store import SqliteStore

    return SqliteStore(settings.switchboard_data_dir / "switchboard.sqlite")


def build_identity_provider(settings: Settings) -> IdentityProvider:
    if settings.uses_azure_identity:
        from switchboard.adapters.acs_azure import AzureIdentityProvider

        secret = settings.acs_connection_string
        return AzureIdentityProvider.from_settings(
            endpoint=settings.acs_endpoint,
            connection_string=secret.get_secret_value() if secret else None,
            managed_identity_client_id=settings.azure_client_id,
        )
    from switchboard.adapters.acs_local import LocalIdentityIssuer

    return LocalIdentityIssuer(settings.switchboard_data_dir)


def build_chat_provider(
    settings: Settings, store: DocumentStore, identity_provider: IdentityProvider
) -> ChatProvider:
    """ACS Chat acting as the controller's service identity, or the local provider."""
    endpoint = settings.acs_resource_endpoint
    if settings.uses_azure_identity:
        if not endpoint:
            from switchboard.errors import ConfigurationError

            raise ConfigurationError("bad setting: ACS_CONNECTION_STRING: it has no endpoint=")
        from switchboard.adapters.chat_azure import AzureChatProvider
        from switchboard.services.chat_identity import ChatServiceIdentity

        return AzureChatProvider(endpoint, ChatServiceIdentity(store, identity_provider).token)
    from switchboard.adapters.chat_local import LocalChatProvider

    return LocalChatProvider(settings.switchboard_data_dir)


def build_push_sender(settings: Settings) -> PushSender | None:
    """The Notification Hub when configured; else the local outbox, but never in Azure (None)."""
    if settings.uses_notification_hub:
        from switchboard.adapters.push_azure import AzurePushHub

        secret = settings.notification_hub_connection_string
        assert secret is not None  # enforced by Settings
        assert settings.notification_hub_name
        logging.getLogger("switchboard.push").info(
            "pushes go through Notification Hub %s in namespace %s",
            settings.notification_hub_name,
            settings.notification_hub_namespace or "(from the connection string)",
        )
        return AzurePushHub.from_connection_string(
            secret.get_secret_value(), settings.notification_hub_name
        )
    if settings.running_in_azure:
        return None
    from switchboard.adapters.push_local import LocalPushHub

    return LocalPushHub(settings.switchboard_data_dir)


def build_rooms_provider(settings: Settings) -> RoomsProvider:
    """ACS Rooms on the app's ACS resource, or the local rooms provider (embedded)."""
    if settings.uses_azure_identity:
        from switchboard.adapters.rooms_azure import AzureRoomsProvider

        secret = settings.acs_connection_string
        return AzureRoomsProvider.from_settings(
            settings.acs_endpoint,
            secret.get_secret_value() if secret else None,
            settings.azure_client_id,
        )
    from switchboard.adapters.rooms_local import LocalRoomsProvider

    return LocalRoomsProvider(settings.switchboard_data_dir)


LOCAL_APP_URL = "http://localhost:7071"


def build_sms_sender(settings: Settings) -> SmsSender | None:
    """ACS SMS when SMS_FROM is set; in Azure without it, none (never the local outbox)."""
    if settings.uses_azure_sms:
        from switchboard.adapters.sms_azure import AzureSmsSender

        assert settings.sms_from  # uses_azure_sms
        secret = settings.acs_connection_string
        return AzureSmsSender.from_settings(
            settings.sms_from,
            endpoint=settings.acs_endpoint,
            connection_string=secret.get_secret_value() if secret else None,
            managed_identity_client_id=settings.azure_client_id,
        )
    if settings.running_in_azure:
        return None
    from switchboard.adapters.sms_local import LocalSmsOutbox

    return LocalSmsOutbox(settings.switchboard_data_dir)


def build_meeting_provider(settings: Settings) -> MeetingProvider | None:
    """Graph when an organizer is set; else the local recorder, but never in Azure (None)."""
    if settings.uses_graph:
        from switchboard.adapters.graph_azure import GraphMeetingProvider

        assert settings.meetings_organizer_id  # uses_graph
        secret = settings.graph_client_secret
        return GraphMeetingProvider.from_settings(
            organizer_id=settings.meetings_organizer_id,
            lobby_bypass=settings.meetings_lobby_bypass,
            tenant_id=settings.graph_tenant_id,
            client_id=settings.graph_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            managed_identity_client_id=settings.azure_client_id,
        )
    if settings.running_in_azure:
        return None
    from switchboard.adapters.graph_local import LocalMeetingProvider

    return LocalMeetingProvider(settings.switchboard_data_dir)


# How dev mode's own issuer is built: installed by the composition (function_app.py, in dev mode)
# from switchboard/dev/, which a publish leaves out; the runtime names no dev code itself.
LocalIssuerFactory = Callable[..., "LocalIssuer"]
_dev_issuer_factory: LocalIssuerFactory | None = None


def use_dev_issuer(factory: LocalIssuerFactory | None) -> None:
    """Install (or, with None, forget) how dev mode builds its issuer: `factory(data_dir,
    issuer=..., audience=...)`."""
    global _dev_issuer_factory
    _dev_issuer_factory = factory


def build_dev_issuer(settings: Settings) -> LocalIssuer | None:
    if settings.auth_mode != "dev":
        return None
    if _dev_issuer_factory is None:
        from switchboard.errors import ConfigurationError

        raise ConfigurationError(
            "bad setting: AUTH_MODE: dev needs the dev code (switchboard/dev/), which this app "
            "was composed without"
        )
    return _dev_issuer_factory(
        settings.switchboard_data_dir,
        issuer=settings.auth_issuer or "switchboard-dev",
        audience=settings.auth_audience or "switchboard",
    )


def build_authenticator(settings: Settings, dev_issuer: LocalIssuer | None) -> Authenticator:
    from switchboard.auth import (
        BearerAuthenticator,
        EasyAuthAuthenticator,
        RemoteJwksKeySource,
        TokenVerifier,
    )

    if settings.auth_mode == "easyauth":
        return EasyAuthAuthenticator(settings.auth_user_claim, settings.auth_required_scope)
    if dev_issuer is not None:
        verifier = TokenVerifier(
            dev_issuer.key_source(),
            dev_issuer.issuer,
            dev_issuer.audience,
            settings.auth_user_claim,
        )
    else:
        # Both are required for jwt mode by Settings.
        assert settings.auth_issuer
        assert settings.auth_audience
        verifier = TokenVerifier(
            RemoteJwksKeySource(settings.auth_issuer, settings.auth_jwks_url),
            settings.auth_issuer,
            settings.auth_audience,
            settings.auth_user_claim,
            settings.auth_required_scope,
        )
    return BearerAuthenticator(verifier)


_runtime: Runtime | None = None
# The start-up check's refusal, kept: under the Functions host every request would otherwise run
# the check again, a blocking fetch from the issuer per request.
_startup_refusal: Exception | None = None


def get_runtime() -> Runtime:
    """The process's runtime, built from the environment on first use."""
    global _runtime, _startup_refusal
    if _startup_refusal is not None:
        raise _startup_refusal
    if _runtime is None:
        from switchboard.logs import quiet_azure_sdk_logging
        from switchboard.settings import load_settings

        # Under the Functions host as under the devserver: the Azure SDKs log every HTTP request
        # (URLs with user ids, partition keys) at INFO; keep them at WARNING.
        quiet_azure_sdk_logging()
        settings = load_settings()
        if settings.switchboard_telemetry != "off":
            from switchboard import telemetry_setup as telemetry

            telemetry.configure(
                settings.switchboard_telemetry,
                managed_identity_client_id=settings.azure_client_id,
            )
        runtime = Runtime.from_settings(settings)
        logging.getLogger("switchboard").info(
            "Switchboard starting: store %s, identity %s, auth %s",
            settings.switchboard_store,
            "acs" if settings.uses_azure_identity else "local",
            settings.describe_auth(),
        )
        # jwt mode: the issuer's discovery and keys are checked now, and a misconfiguration
        # stops start-up saying what is wrong (an issuer that is only down is logged).
        check = getattr(runtime.adapters.authenticator, "check", None)
        if check is not None:
            try:
                check()
            except Exception as refusal:
                _startup_refusal = refusal
                raise
        _runtime = runtime
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime (tests, the devserver); None forgets it (and a start-up refusal) so
    the next use rebuilds."""
    global _runtime, _startup_refusal
    _runtime = runtime
    _startup_refusal = None
