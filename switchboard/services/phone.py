"""Phone & SMS: verifying a user's number by SMS code, SMS invitations to a club's call or a
meeting, delivery reports and opt-outs (docs/phone.md).

Storage, all in the `phone` container (pk `/pk`), keyed so that no request needs a
cross-partition query and no phone number is ever a key (keys reach URLs and SDK logs):

- `phone/{userId}/phone` (`UserPhoneDoc`): the caller's pending code (salted HMAC-SHA256 of the
  code, never the code; 10 minutes, 5 attempts), the times of their recent sends (the resend and
  daily limits), the messages they caused (so an erase finds them) and which number they own.
- `phone/n-<hash>/number` (`NumberDoc`), one per number ever used, keyed by a hash of its E.164
  form: who verified it (the uniqueness record behind 409 `phone_in_use`), whether its owner
  opted out (STOP), and the recent code and invitation sends to it (the per-number limits, which
  hold whoever sends: each code send is kept with a digest of its requester, keyed by the
  number, so one stranger spends only a share of the number's allowance).
- `phone/m-<hash>/message` (`MessageDoc`), one per message, keyed by a hash of the SMS service's
  message id: what a delivery report updates. It keeps the recipient masked, never in full.

The full number is kept in one place: the owner's profile (`users`), shown to the owner and, as
`pstn.to`, to their accepted friends. Log lines carry numbers masked to their last 4 digits and
never a code.

SMS abuse (docs/security.md): codes and invitations go only to numbers of a country in
SMS_ALLOWED_COUNTRIES and never to premium-rate, shared-cost, personal or non-geographic
(satellite, international network) numbers, the targets of SMS pumping; a number gets at most
`CODES_PER_NUMBER` codes and `INVITES_PER_NUMBER` invitations a day whoever asks, and one
requester at most `CODES_PER_REQUESTER` of its codes. A 429 never says which limit a number hit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, cast
from urllib.parse import quote

from switchboard import errors, telemetry
from switchboard.logs import mask_number, safe
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentStore,
    PreconditionFailed,
    SmsOutbox,
    SmsSender,
    SmsSendResult,
)
from switchboard.services.caller import Caller

if TYPE_CHECKING:
    from switchboard.services.identity import ProfileView

log = logging.getLogger("switchboard.phone")

PHONE = "phone"
USER_DOC_ID = "phone"
NUMBER_DOC_ID = "number"
MESSAGE_DOC_ID = "message"

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
CODE_ATTEMPTS = 5
RESEND_INTERVAL = timedelta(minutes=1)
CODES_PER_DAY = 5  # per user, whatever the numbers
CODES_PER_NUMBER = 10  # per number and day, whoever asks: the flood limit
CODES_PER_REQUESTER = 3  # per number, day and requester: no stranger spends the owner's share
INVITES_PER_NUMBER = 3  # SMS invitations per number and day, whoever sends them
DAY = timedelta(days=1)
# How far ahead of our clock an event's own timestamp may be (clock skew): a later one is forged
# or broken, and would make every real event after it look older.
FUTURE_SKEW = timedelta(minutes=5)
# Message records (and the user's list of them) are kept this long: delivery reports come
# within hours; after that a record only answers "what happened to my invitation".
MESSAGE_RETENTION = timedelta(days=30)
_WRITE_ATTEMPTS = 4

TAG_VERIFICATION = "verification"
TAG_INVITE = "invite"

# Inbound keywords (case-insensitive, the whole message): the carriers' and ACS's opt-out and
# opt-in words.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})

# What a delivery report says when the recipient blocked the app's number (ACS applies STOP
# itself and refuses further messages): the number is then opted out here too.
SENDER_BLOCKED = "sender blocked for given recipient"
# Kinds of number no code or invitation goes to (phonenumbers.PhoneNumberType values): premium
# rate and shared cost (their operators share the fee: SMS pumping) and personal numbers (UK 070,
# forwarded anywhere at the caller's cost). Non-geographic numbers (region "001": +870 Inmarsat,
# +881 satellite, +882/+883 international networks, +979 international premium rate, +800/+808
# international freephone and shared cost) are refused by their region.
_PUMPING_TYPES = frozenset({4, 5, 7})  # PREMIUM_RATE, SHARED_COST, PERSONAL_NUMBER
NON_GEOGRAPHIC_REGION = "001"
_BUSY_CODES = "Too many codes asked for right now; try again later."
_BUSY_INVITES = "Too many SMS invitations right now; try again later."

DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"


# --- stored documents ---------------------------------------------------------------------------


class PendingCode(TypedDict):
    number: str  # E.164, in the owner's own partition: set on the profile once verified
    numberKey: str
    salt: str
    codeHash: str
    expiresAt: str
    attempts: int


class MessageRef(TypedDict):
    key: str
    at: str


class UserPhoneDoc(TypedDict):
    """`phone/{userId}/phone`: one user's codes, send history and owned number."""

    id: str
    pk: str
    userId: str
    pending: PendingCode | None
    verifiedKey: str | None
    # The verified number itself, the user's own data beside its key: erase purges it, and the
    # dev outbox forgets the messages to it (the profile, which shows it, is gone by then).
    verifiedNumber: NotRequired[str | None]
    codeSends: list[str]
    inviteSends: list[str]
    messages: list[MessageRef]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class NumberSend(TypedDict):
    at: str
    by: str  # `requester_digest(number key, user id)`: whose allowance the send spent


class NumberDoc(TypedDict):
    """`phone/n-<hash>/number`: one number's owner, opt-out and recent sends."""

    id: str
    pk: str
    ownerId: str | None
    optedOut: bool
    codeSends: list[NumberSend]
    updatedAt: str
    inviteSends: NotRequired[list[str]]
    # The receivedTimestamp of the STOP/START that set `optedOut`: an older one arriving late
    # (Event Grid keeps no order) does not undo it.
    optChangedAt: NotRequired[str]
    ttl: NotRequired[int]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class MessageDoc(TypedDict):
    """`phone/m-<hash>/message`: one message and what became of it."""

    id: str
    pk: str
    messageId: str
    userId: str
    purpose: str
    to: str  # masked
    status: str
    statusDetails: str | None
    sentAt: str
    updatedAt: str
    # The receivedTimestamp of the delivery report `status` comes from: an older report arriving
    # late (Event Grid keeps no order) does not overwrite it.
    reportedAt: NotRequired[str]
    ttl: int
    _etag: NotRequired[str]
    _ts: NotRequired[int]


def _doc(doc: UserPhoneDoc | NumberDoc | MessageDoc) -> Doc:
    return {k: v for k, v in cast(Doc, doc).items() if not k.startswith("_")}


# --- keys and numbers -------------------------------------------------------------------------


def number_key(e164: str) -> str:
    """The partition of a number's record: a hash, so no number is ever a key."""
    return "n-" + hashlib.sha256(f"switchboard-number:{e164}".encode()).hexdigest()[:40]


def message_key(message_id: str) -> str:
    return "m-" + hashlib.sha256(f"switchboard-message:{message_id}".encode()).hexdigest()[:40]


def requester_digest(key: str, user_id: str) -> str:
    """Who spent a send to the number `key`: keyed by the number, so the digest names nobody
    elsewhere, and kept only as long as the send counts (a day)."""
    return hashlib.sha256(f"{key}\x00{user_id}".encode()).hexdigest()[:16]


def _parsed(raw: str) -> Any:
    import phonenumbers  # ~30 ms of metadata: loaded on the first SMS request, not at import

    try:
        return phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None


def parse_number(raw: str, field: str) -> str:
    """`raw` as E.164 if `phonenumbers` accepts it as a valid number; else 400."""
    import phonenumbers

    parsed = _parsed(raw)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise errors.InvalidPhoneNumber(
            f"{field}: not a valid phone number; give it in E.164 form (+14255550123)",
            field=field,
        )
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def sendable_number(raw: str, field: str, countries: frozenset[str] | None) -> str:
    """`raw` as E.164 if a code or an invitation may go to it: a valid number of an allowed
    country (`countries`, ISO codes; None: any) that is no SMS-pumping target; else 400."""
    import phonenumbers

    number = parse_number(raw, field)
    parsed = phonenumbers.parse(number, None)
    region = phonenumbers.region_code_for_number(parsed)
    if region == NON_GEOGRAPHIC_REGION or phonenumbers.number_type(parsed) in _PUMPING_TYPES:
        raise errors.PhoneNumberNotAllowed(
            f"{field}: SMS does not go to premium-rate, shared-cost, personal or "
            "non-geographic (satellite, international network) numbers",
            field=field,
        )
    if countries is not None and region not in countries:
        raise errors.PhoneNumberNotAllowed(
            f"{field}: this server sends SMS only to numbers of {', '.join(sorted(countries))}",
            field=field,
        )
    return number


def inbound_number(raw: str) -> str | None:
    """An inbound message's sender as E.164, or None. ACS sends it with or without its `+`
    (the published SMSReceived sample has "from": "15555555555"); a possible number is enough,
    as it only finds the number's record (an opt-out must never be lost to a validity rule)."""
    import phonenumbers

    text = raw.strip()
    if text.isdigit():
        text = "+" + text
    parsed = _parsed(text)
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _hash_code(salt: bytes, code: str) -> str:
    return hmac.new(salt, code.encode(), hashlib.sha256).hexdigest()


# --- what the service answers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    status: str  # "accepted" | "failed"
    expires_at: datetime | None = None


class PhoneProfiles(Protocol):
    """The identity service's part in verification: the verified number on the profile."""

    async def set_phone(self, caller: Caller, number: str | None) -> ProfileView: ...


# Another capability's check that a user may invite to one of its objects; raises NotFound.
Access = Callable[[str, str], Awaitable[object]]


class PhoneService:
    """Verification codes, SMS invitations, delivery reports and opt-outs."""

    def __init__(
        self,
        store: DocumentStore,
        sender: SmsSender | None,
        profiles: Callable[[], PhoneProfiles],
        *,
        daily_invites: int = 20,
        allowed_countries: frozenset[str] | None = None,
        app_url: str | None = None,
        club_access: Access | None = None,
        meeting_access: Access | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._sender = sender
        self._profiles = profiles
        self._daily_invites = daily_invites
        self._countries = allowed_countries
        self._app_url = app_url.rstrip("/") if app_url else None
        self._club_access = club_access
        self._meeting_access = meeting_access
        self._clock = clock

    # --- verification -------------------------------------------------------------------------

    async def start_verification(self, caller: Caller, raw_number: str) -> SentMessage:
        """Send a 6-digit code to `raw_number` for the caller to prove it is theirs.

        Store: 1 read_many, 2 writes to reserve the send, 1 create (message), 1 write (pending
        code); SMS: 1 send.
        """
        self._require_sender()
        number = sendable_number(raw_number, "phoneNumber", self._countries)
        key = number_key(number)
        now = self._clock()
        user, record = await self._read_user_and_number(caller.user_id, key)
        # A number another user verified gets its code too, and the answer is the same: a 409
        # here would tell anyone whether a number belongs to a user. Only the code's holder
        # learns it, at verify (409 phone_in_use).
        if record is not None and record["optedOut"]:
            telemetry.SMS.add(1, outcome="opted_out")
            raise errors.RecipientOptedOut(
                "phoneNumber: this number has opted out of SMS (reply START to opt back in)."
            )
        by = requester_digest(key, caller.user_id)
        _check_rate(user["codeSends"] if user else [], now)
        _check_number_codes(record, now, by)
        stamp = now.isoformat()
        user = await self._reserve_user_send(caller.user_id, user, "codeSends", stamp)
        await self._reserve_number_send(caller.user_id, key, record, stamp, by)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        text = f"Your Switchboard code is {code}. It expires in 10 minutes."
        result = await self._send(caller.user_id, number, text, TAG_VERIFICATION, stamp, key)
        expires = now + CODE_LIFETIME
        salt = secrets.token_bytes(16)
        pending: PendingCode = {
            "number": number,
            "numberKey": key,
            "salt": salt.hex(),
            "codeHash": _hash_code(salt, code),
            "expiresAt": expires.isoformat(),
            "attempts": 0,
        }
        await self._update_user(
            caller.user_id,
            user,
            lambda doc: {
                **doc,
                "pending": pending if result.status == "accepted" else doc["pending"],
                "messages": [*_pruned_refs(doc["messages"], now), _ref(result, stamp)],
            },
        )
        log.info(
            "verification code sent to %s (%s)", mask_number(number), result.status
        )  # never the code
        return SentMessage(result.message_id, result.status, expires)

    async def verify(self, caller: Caller, code: str) -> ProfileView:
        """The right code makes its number the caller's verified number.

        Store: 1 read, 1 write (the attempt), 1 read + 1 write (the number's owner), 2 on the
        profile, 1 write (code spent), and 2 more when it replaces an earlier verified number.
        """
        now = self._clock()
        user = await self._read_user(caller.user_id)
        pending = user["pending"] if user else None
        if user is None or pending is None:
            raise errors.InvalidCode("code: no code is pending; ask for one first", field="code")
        if (
            pending["attempts"] >= CODE_ATTEMPTS
            or datetime.fromisoformat(pending["expiresAt"]) <= now
        ):
            raise errors.InvalidCode("code: the code has expired; ask for a new one", field="code")
        expected = pending["codeHash"]

        # The attempt is spent before the comparison, under the document's etag: guesses sent
        # together each need their own write, so no more than CODE_ATTEMPTS are ever compared.
        def attempt_left(doc: UserPhoneDoc) -> None:
            current = doc["pending"]
            if current is None or current["codeHash"] != expected:
                raise errors.InvalidCode("code: no code is pending; ask for one", field="code")
            if current["attempts"] >= CODE_ATTEMPTS:
                raise errors.InvalidCode(
                    "code: the code has expired; ask for a new one", field="code"
                )

        def spend_attempt(doc: UserPhoneDoc) -> UserPhoneDoc:
            current = cast(PendingCode, doc["pending"])
            return {**doc, "pending": {**current, "attempts": current["attempts"] + 1}}

        user = await self._update_user(caller.user_id, user, spend_attempt, attempt_left)
        if not hmac.compare_digest(_hash_code(bytes.fromhex(pending["salt"]), code), expected):
            raise errors.InvalidCode("code: wrong code", field="code")
        number, key = pending["number"], pending["numberKey"]
        await self._claim_number(key, caller.user_id)
        view = await self._profiles().set_phone(caller, number)
        previous = user["verifiedKey"]
        if previous and previous != key:
            await self._release_number(previous, caller.user_id)
        await self._update_user(
            caller.user_id,
            user,
            lambda doc: {**doc, "pending": None, "verifiedKey": key, "verifiedNumber": number},
        )
        log.info("phone number %s verified", mask_number(number))
        return view

    # --- invitations --------------------------------------------------------------------------

    async def invite(
        self, caller: Caller, raw_to: str, club_id: str | None, meeting_id: str | None
    ) -> SentMessage:
        """An SMS with the join link of a club's call or a meeting the caller belongs to.

        Store: 1 read_many, 1 write (reserve), 1 create (message), 1 write; SMS: 1 send; plus the
        club's or meeting's own membership check.
        """
        self._require_sender()
        if not self._app_url:
            raise errors.SmsNotConfigured(
                "SMS invitations need PUBLIC_APP_URL (the app's address for join links)."
            )
        to = sendable_number(raw_to, "to", self._countries)
        if club_id is not None:
            await _check_access(self._club_access, caller.user_id, club_id, "club")
            link = f"{self._app_url}/?clubId={quote(club_id, safe='')}"
            what = "a club's call"
        else:
            assert meeting_id is not None  # the model requires exactly one
            await _check_access(self._meeting_access, caller.user_id, meeting_id, "meeting")
            link = f"{self._app_url}/?meetingId={quote(meeting_id, safe='')}"
            what = "a meeting"
        now = self._clock()
        key = number_key(to)
        user, record = await self._read_user_and_number(caller.user_id, key)
        if record is not None and record["optedOut"]:
            telemetry.SMS.add(1, outcome="opted_out")
            raise errors.RecipientOptedOut("to: this number has opted out of SMS.", field="to")
        recent = _within(user["inviteSends"] if user else [], now, DAY)
        if len(recent) >= self._daily_invites:
            wait = (min(recent) + DAY - now).total_seconds()
            raise errors.TooManyRequests(
                f"At most {self._daily_invites} SMS invitations a day.",
                retry_after=max(1, int(wait) + 1),
            )
        _check_number_invites(record, now)
        stamp = now.isoformat()
        user = await self._reserve_user_send(caller.user_id, user, "inviteSends", stamp)
        await self._reserve_number_invite(caller.user_id, key, record, stamp)
        name = _plain_name(caller.name)
        text = f"{name} invites you to join {what} on Switchboard: {link} Reply STOP to opt out."
        result = await self._send(caller.user_id, to, text, TAG_INVITE, stamp, key)
        await self._update_user(
            caller.user_id,
            user,
            lambda doc: {
                **doc,
                "messages": [*_pruned_refs(doc["messages"], now), _ref(result, stamp)],
            },
        )
        log.info("SMS invitation sent to %s (%s)", mask_number(to), result.status)
        return SentMessage(result.message_id, result.status)

    # --- Event Grid ---------------------------------------------------------------------------

    async def handle_event(self, event_type: str, data: object) -> None:
        """One ACS SMS event. Unknown types and malformed events are logged and ignored; a store
        failure raises, so Event Grid delivers the event again."""
        if not isinstance(data, Mapping):
            log.warning("SMS event %s without a data object: ignored", safe(event_type, 80))
            return
        received = _moment(_field(data, "receivedTimestamp"))
        if received is not None and received > self._clock() + FUTURE_SKEW:
            # A forged START dated 2099 would otherwise make every real STOP look older.
            log.warning("SMS event %s dated in the future: skipped", safe(event_type, 80))
            return
        if event_type == DELIVERY_REPORT:
            await self._delivery_report(data)
        elif event_type == SMS_RECEIVED:
            await self._received(data)
        else:
            log.info("SMS event of type %s ignored", safe(event_type, 80))

    async def _delivery_report(self, data: Mapping[str, Any]) -> None:
        message_id = _field(data, "messageId")
        status = _field(data, "deliveryStatus")
        if not message_id or not status:
            log.warning("SMS delivery report without messageId or deliveryStatus: ignored")
            return
        details = _field(data, "deliveryStatusDetails")
        received = _moment(_field(data, "receivedTimestamp"))
        if details and SENDER_BLOCKED in details.lower():
            await self._recipient_blocked(_field(data, "to"), received)
        key = message_key(message_id)
        for _ in range(_WRITE_ATTEMPTS):
            doc = await self._store.read(PHONE, key, MESSAGE_DOC_ID)
            if doc is None:
                log.info("delivery report for a message we do not know: ignored")
                return
            message = cast(MessageDoc, doc)
            if not _newer(received, message.get("reportedAt")):
                log.info("SMS delivery report older than the message's status: ignored")
                return
            updated: MessageDoc = {
                **message,
                "status": status.lower()[:32],
                "statusDetails": details[:200] if details else None,
                "updatedAt": self._clock().isoformat(),
            }
            if received is not None:
                updated["reportedAt"] = received.isoformat()
            try:
                await self._store.replace(PHONE, _doc(updated), message["_etag"])
            except PreconditionFailed:
                continue
            log.info("SMS %s: %s", message["purpose"], safe(status, 32))
            return
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _recipient_blocked(self, recipient: str | None, received: datetime | None) -> None:
        """The recipient blocked the app's number (STOP, applied by ACS): opted out here too, so
        no code or invitation is sent to it again until a START."""
        number = inbound_number(recipient) if recipient else None
        if number is None:
            log.warning("a 'sender blocked' delivery report without a usable recipient")
            return
        if await self._set_opt_out(number, True, received):
            log.info("%s blocked the sender: opted out of SMS", mask_number(number))

    async def _received(self, data: Mapping[str, Any]) -> None:
        sender = _field(data, "from")
        text = (_field(data, "message") or "").strip().upper()
        if not sender:
            log.warning("inbound SMS without a sender: ignored")
            return
        if text in OPT_OUT_WORDS:
            opted_out = True
        elif text in OPT_IN_WORDS:
            opted_out = False
        else:
            log.info("inbound SMS from %s is no keyword: ignored", safe(mask_number(sender), 32))
            return
        number = inbound_number(sender)
        if number is None:
            log.warning("inbound SMS from an unparseable sender: ignored")
            return
        received = _moment(_field(data, "receivedTimestamp"))
        if not await self._set_opt_out(number, opted_out, received):
            log.info("inbound %s older than the number's last keyword: ignored", text[:12])
            return
        log.info("%s opted %s of SMS", mask_number(number), "out" if opted_out else "back in")

    async def _set_opt_out(self, number: str, opted_out: bool, received: datetime | None) -> bool:
        """Record an opt-out (or back in) dated `received`; False when a later keyword already
        decided (Event Grid keeps no order)."""
        applied: list[bool] = []

        def opt(doc: NumberDoc) -> NumberDoc:
            applied.clear()
            # Without a timestamp of its own a STOP still counts (never text someone who asked
            # not to be), a START only when no dated keyword came before it.
            if received is None and opted_out:
                pass
            elif not _newer(received, doc.get("optChangedAt")):
                return doc
            applied.append(True)
            changed: NumberDoc = {**doc, "optedOut": opted_out}
            if received is not None:
                changed["optChangedAt"] = received.isoformat()
            return changed

        await self._update_number(number_key(number), opt)
        return bool(applied)

    # --- erase --------------------------------------------------------------------------------

    async def purge_user(self, user_id: str) -> None:
        """The user's codes, send history and message records go; their number is released; the
        dev outbox (local SMS only) drops the messages they caused and those to their number."""
        user = await self._read_user(user_id)
        if user is None:
            return
        if isinstance(self._sender, SmsOutbox):
            await self._forget_in_outbox(self._sender, user)
        for ref in user["messages"]:
            await self._store.delete(PHONE, ref["key"], MESSAGE_DOC_ID)
        pending = user["pending"]
        for key in {user["verifiedKey"], pending["numberKey"] if pending else None} - {None}:
            assert key is not None
            await self._release_number(key, user_id)
        await self._store.delete(PHONE, user_id, USER_DOC_ID)

    async def _forget_in_outbox(self, outbox: SmsOutbox, user: UserPhoneDoc) -> None:
        keys = [(ref["key"], MESSAGE_DOC_ID) for ref in user["messages"]]
        messages = await self._store.read_many(PHONE, keys) if keys else []
        numbers = {user["pending"]["number"] if user["pending"] else None}
        numbers.add(user.get("verifiedNumber"))
        await outbox.forget(
            message_ids=[str(m["messageId"]) for m in messages],
            recipients=sorted(n for n in numbers if isinstance(n, str)),
        )

    # --- internals ----------------------------------------------------------------------------

    def _require_sender(self) -> SmsSender:
        if self._sender is None:
            raise errors.SmsNotConfigured("SMS is not configured on this server (SMS_FROM).")
        return self._sender

    async def _send(
        self, user_id: str, to: str, text: str, purpose: str, stamp: str, key: str
    ) -> SentMessage:
        """Send, then record the message; a refused recipient is a failed message."""
        sender = self._require_sender()
        try:
            result = await sender.send(to, text, tag=purpose)
        except errors.DependencyUnavailable:
            telemetry.SMS.add(1, outcome="failed")
            await self._unreserve(user_id, key, stamp)
            raise
        telemetry.SMS.add(1, outcome="sent" if result.accepted else "failed")
        return await self._record(user_id, to, purpose, stamp, result)

    async def _record(
        self, user_id: str, to: str, purpose: str, stamp: str, result: SmsSendResult
    ) -> SentMessage:
        message_id = result.message_id or f"failed-{secrets.token_hex(12)}"
        status = "accepted" if result.accepted else "failed"
        message: MessageDoc = {
            "id": MESSAGE_DOC_ID,
            "pk": message_key(message_id),
            "messageId": message_id,
            "userId": user_id,
            "purpose": purpose,
            "to": mask_number(to),
            "status": status,
            "statusDetails": None if result.accepted else (result.error or "")[:200],
            "sentAt": stamp,
            "updatedAt": stamp,
            "ttl": int(MESSAGE_RETENTION.total_seconds()),
        }
        await self._store.upsert(PHONE, _doc(message))
        return SentMessage(message_id, status)

    async def _read_user(self, user_id: str) -> UserPhoneDoc | None:
        doc = await self._store.read(PHONE, user_id, USER_DOC_ID)
        return None if doc is None else cast(UserPhoneDoc, doc)

    async def _read_user_and_number(
        self, user_id: str, key: str
    ) -> tuple[UserPhoneDoc | None, NumberDoc | None]:
        docs = await self._store.read_many(PHONE, [(user_id, USER_DOC_ID), (key, NUMBER_DOC_ID)])
        # By (pk, id): a user id may look like a number's key, never its document id.
        user = next((d for d in docs if (d["pk"], d["id"]) == (user_id, USER_DOC_ID)), None)
        record = next((d for d in docs if (d["pk"], d["id"]) == (key, NUMBER_DOC_ID)), None)
        return cast(UserPhoneDoc | None, user), cast(NumberDoc | None, record)

    def _new_user(self, user_id: str) -> UserPhoneDoc:
        return {
            "id": USER_DOC_ID,
            "pk": user_id,
            "userId": user_id,
            "pending": None,
            "verifiedKey": None,
            "codeSends": [],
            "inviteSends": [],
            "messages": [],
        }

    async def _update_user(
        self,
        user_id: str,
        current: UserPhoneDoc | None,
        change: Callable[[UserPhoneDoc], UserPhoneDoc],
        check: Callable[[UserPhoneDoc], None] | None = None,
    ) -> UserPhoneDoc:
        """Apply `change` to the user's document under its etag, re-reading after a race."""
        for _ in range(_WRITE_ATTEMPTS):
            base = current if current is not None else self._new_user(user_id)
            if check is not None:
                check(base)
            updated = change(base)
            try:
                if current is None:
                    saved = await self._store.create(PHONE, _doc(updated))
                else:
                    saved = await self._store.replace(PHONE, _doc(updated), current["_etag"])
                return cast(UserPhoneDoc, saved)
            except (DocumentExists, PreconditionFailed):
                current = await self._read_user(user_id)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _update_number(
        self,
        key: str,
        change: Callable[[NumberDoc], NumberDoc],
        current: NumberDoc | None = None,
        *,
        read_first: bool = True,
        check: Callable[[NumberDoc], None] | None = None,
    ) -> NumberDoc:
        if read_first:
            current = await self._read_number(key)
        for _ in range(_WRITE_ATTEMPTS):
            base: NumberDoc = current or {
                "id": NUMBER_DOC_ID,
                "pk": key,
                "ownerId": None,
                "optedOut": False,
                "codeSends": [],
                "updatedAt": "",
                "inviteSends": [],
            }
            if check is not None:
                check(base)
            updated = change(base)
            updated = {**updated, "updatedAt": self._clock().isoformat()}
            updated.pop("ttl", None)
            if updated["ownerId"] is None and not updated["optedOut"]:
                # Only send times left: the record may go once they no longer count.
                updated["ttl"] = int(DAY.total_seconds()) + 60
            try:
                if current is None:
                    saved = await self._store.create(PHONE, _doc(updated))
                else:
                    saved = await self._store.replace(PHONE, _doc(updated), current["_etag"])
                return cast(NumberDoc, saved)
            except (DocumentExists, PreconditionFailed):
                current = await self._read_number(key)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _read_number(self, key: str) -> NumberDoc | None:
        doc = await self._store.read(PHONE, key, NUMBER_DOC_ID)
        return None if doc is None else cast(NumberDoc, doc)

    async def _reserve_user_send(
        self, user_id: str, user: UserPhoneDoc | None, field: str, stamp: str
    ) -> UserPhoneDoc:
        now = datetime.fromisoformat(stamp)

        def check(doc: UserPhoneDoc) -> None:  # again, on what a racing request left
            if field == "codeSends":
                _check_rate(doc["codeSends"], now)
            elif len(_within(doc["inviteSends"], now, DAY)) >= self._daily_invites:
                raise errors.TooManyRequests(
                    f"At most {self._daily_invites} SMS invitations a day.", retry_after=60
                )

        def add(doc: UserPhoneDoc) -> UserPhoneDoc:
            kept = [s.isoformat() for s in _within(cast(list[str], doc[field]), now, DAY)]  # type: ignore[literal-required]
            return cast(UserPhoneDoc, {**doc, field: [*kept, stamp]})

        return await self._update_user(user_id, user, add, check)

    async def _reserve_number_send(
        self, user_id: str, key: str, record: NumberDoc | None, stamp: str, by: str
    ) -> None:
        now = datetime.fromisoformat(stamp)

        def add(doc: NumberDoc) -> NumberDoc:
            kept = [s for s in _number_sends(doc) if _counts(s["at"], now)]
            return {**doc, "codeSends": [*kept, {"at": stamp, "by": by}]}

        await self._reserve_number(
            user_id, key, record, stamp, add, lambda doc: _check_number_codes(doc, now, by)
        )

    async def _reserve_number_invite(
        self, user_id: str, key: str, record: NumberDoc | None, stamp: str
    ) -> None:
        now = datetime.fromisoformat(stamp)

        def add(doc: NumberDoc) -> NumberDoc:
            kept = [s.isoformat() for s in _within(doc.get("inviteSends", []), now, DAY)]
            return {**doc, "inviteSends": [*kept, stamp]}

        await self._reserve_number(
            user_id, key, record, stamp, add, lambda doc: _check_number_invites(doc, now)
        )

    async def _reserve_number(
        self,
        user_id: str,
        key: str,
        record: NumberDoc | None,
        stamp: str,
        add: Callable[[NumberDoc], NumberDoc],
        check: Callable[[NumberDoc], None],
    ) -> None:
        """Count a send against the number, checked again on what a racing request left; when
        that check refuses, the caller's own reservation (already written) is given back."""
        try:
            await self._update_number(key, add, record, read_first=False, check=check)
        except errors.TooManyRequests:
            await self._unreserve(user_id, key, stamp)
            raise

    async def _unreserve(self, user_id: str, key: str, stamp: str) -> None:
        """Best effort: a send the SMS service never took does not count against the limits."""
        try:
            await self._update_user(
                user_id,
                await self._read_user(user_id),
                lambda doc: {
                    **doc,
                    "codeSends": [s for s in doc["codeSends"] if s != stamp],
                    "inviteSends": [s for s in doc["inviteSends"] if s != stamp],
                },
            )
            if await self._read_number(key) is not None:
                await self._update_number(
                    key,
                    lambda doc: {
                        **doc,
                        "codeSends": [s for s in _number_sends(doc) if s["at"] != stamp],
                        "inviteSends": [s for s in doc.get("inviteSends", []) if s != stamp],
                    },
                )
        except errors.SwitchboardError:
            log.warning("could not release an SMS send reservation", exc_info=True)

    async def _claim_number(self, key: str, user_id: str) -> None:
        def check(doc: NumberDoc) -> None:
            if doc["ownerId"] not in (None, user_id):
                raise errors.PhoneInUse("code: another user has verified this number meanwhile.")

        await self._update_number(key, lambda doc: {**doc, "ownerId": user_id}, check=check)

    async def _release_number(self, key: str, user_id: str) -> None:
        record = await self._read_number(key)
        if record is None or record["ownerId"] != user_id:
            return
        await self._update_number(
            key,
            lambda doc: {**doc, "ownerId": None} if doc["ownerId"] == user_id else doc,
            record,
            read_first=False,
        )


async def _check_access(access: Access | None, user_id: str, object_id: str, kind: str) -> None:
    if access is None:
        raise errors.NotFound(f"No such {kind}.")
    await access(user_id, object_id)


def _within(stamps: list[str], now: datetime, window: timedelta) -> list[datetime]:
    times = []
    for stamp in stamps:
        try:
            at = datetime.fromisoformat(stamp)
        except (TypeError, ValueError):
            continue
        if now - window < at <= now + timedelta(minutes=5):
            times.append(at)
    return times


def _counts(stamp: str, now: datetime) -> bool:
    return bool(_within([stamp], now, DAY))


def _number_sends(doc: NumberDoc | None) -> list[NumberSend]:
    """The code sends a number's record keeps (a bare time, as older records kept them, counts
    against the number's limit and nobody's share)."""
    sends: list[NumberSend] = []
    for entry in doc["codeSends"] if doc else []:
        if isinstance(entry, str):
            sends.append({"at": entry, "by": ""})
        elif isinstance(entry, dict) and isinstance(entry.get("at"), str):
            sends.append({"at": entry["at"], "by": str(entry.get("by") or "")})
    return sends


def _check_number_codes(doc: NumberDoc | None, now: datetime, by: str) -> None:
    """A number's flood limit: `CODES_PER_NUMBER` a day whoever asks, and no more than
    `CODES_PER_REQUESTER` of them for one requester, so a stranger can spend only a share of
    them and never lock the number's owner out. The answer names no number."""
    recent = [
        (at, send["by"]) for send in _number_sends(doc) for at in _within([send["at"]], now, DAY)
    ]
    mine = [at for at, who in recent if who == by]
    for times, limit in ((mine, CODES_PER_REQUESTER), ([at for at, _ in recent], CODES_PER_NUMBER)):
        if len(times) >= limit:
            wait = (sorted(times)[len(times) - limit] + DAY - now).total_seconds()
            raise errors.TooManyRequests(_BUSY_CODES, retry_after=max(1, int(wait) + 1))


def _check_number_invites(doc: NumberDoc | None, now: datetime) -> None:
    """At most `INVITES_PER_NUMBER` SMS invitations a day to one number, whoever sends them."""
    recent = _within(doc.get("inviteSends", []) if doc else [], now, DAY)
    if len(recent) >= INVITES_PER_NUMBER:
        wait = (sorted(recent)[len(recent) - INVITES_PER_NUMBER] + DAY - now).total_seconds()
        raise errors.TooManyRequests(_BUSY_INVITES, retry_after=max(1, int(wait) + 1))


def _check_rate(stamps: list[str], now: datetime) -> None:
    """The caller's own code allowance: one a minute and `CODES_PER_DAY` a day, whatever the
    numbers; 429 with the wait otherwise."""
    recent = _within(stamps, now, DAY)
    if recent and now - max(recent) < RESEND_INTERVAL:
        wait = (max(recent) + RESEND_INTERVAL - now).total_seconds()
        raise errors.TooManyRequests(
            "One code a minute; try again shortly.", retry_after=max(1, int(wait) + 1)
        )
    if len(recent) >= CODES_PER_DAY:
        wait = (min(recent) + DAY - now).total_seconds()
        raise errors.TooManyRequests(
            f"At most {CODES_PER_DAY} codes a day.", retry_after=max(1, int(wait) + 1)
        )


def _plain_name(name: str | None) -> str:
    """The inviter's name (the token's claim) as one plain line for the SMS: control, format and
    line-breaking characters become spaces, so a name cannot forge a second line of a message
    the app's number sends, nor reverse its text."""
    words = "".join(ch if ch.isprintable() else " " for ch in name or "").split()
    return " ".join(words)[:40].strip() or "Someone"


def _ref(message: SentMessage, stamp: str) -> MessageRef:
    return {"key": message_key(message.message_id), "at": stamp}


def _pruned_refs(refs: list[MessageRef], now: datetime) -> list[MessageRef]:
    kept = []
    for ref in refs:
        try:
            if now - datetime.fromisoformat(ref["at"]) < MESSAGE_RETENTION:
                kept.append(ref)
        except (KeyError, TypeError, ValueError):
            continue
    return kept


def _moment(text: str | None) -> datetime | None:
    """An event's timestamp (ISO 8601, up to 7 fractional digits), or None if it is not one."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _newer(received: datetime | None, stored: str | None) -> bool:
    """Whether an event stamped `received` may replace what an event stamped `stored` set: yes
    when nothing dated came before; an undated event never replaces a dated one."""
    before = _moment(stored)
    if before is None:
        return True
    return received is not None and received >= before


def _field(data: Mapping[str, Any], name: str) -> str | None:
    """A string field of an event's data by its camelCase name, or its PascalCase twin (older
    events); None when absent or not a string."""
    value = data.get(name)
    if value is None:
        value = data.get(name[:1].upper() + name[1:])
    return value if isinstance(value, str) else None
