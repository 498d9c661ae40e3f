"""Wire models of the phone & SMS capability: verification, SMS invitations, the dev outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from switchboard.models import ApiModel, RequestModel, UserId

# What a client may send as a number: the service parses it with `phonenumbers`; this only
# bounds the text (E.164 is at most 16 characters; spaces and dashes are tolerated).
PhoneText = Annotated[str, StringConstraints(min_length=1, max_length=32)]
# An id of another capability's object (a club, a meeting): the one id rule.
ObjectId = UserId


class PhoneNumberRequest(RequestModel):
    phone_number: PhoneText = Field(
        description="The number to verify, E.164 ('+14255550123').", examples=["+14255550123"]
    )


class PhoneCodeRequest(RequestModel):
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] = Field(
        description="The 6-digit code the SMS carried.", examples=["123456"]
    )


class SmsMessage(ApiModel):
    """A message Switchboard sent, as the caller may see it (never the code it carried)."""

    message_id: str
    status: Literal["accepted", "failed"]


class VerificationStarted(SmsMessage):
    expires_at: datetime = Field(description="When the code stops working.")


class SmsInviteRequest(RequestModel):
    to: PhoneText = Field(description="The invitee's number, E.164.", examples=["+14255550199"])
    club_id: ObjectId | None = None
    meeting_id: ObjectId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> SmsInviteRequest:
        if (self.club_id is None) == (self.meeting_id is None):
            raise ValueError("give exactly one of clubId and meetingId")
        return self
