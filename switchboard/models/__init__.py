"""Wire models shared by every capability; each capability has its own module beside this one.

The wire shapes of docs/architecture.md#http-api, used by the route decorator (parsing) and the
OpenAPI document.

Fields are snake_case in Python and camelCase on the wire. Response models are validated from
attributes: a route returns its service's view (the same field names, snake_case) and the route
decorator makes the wire model of it (`Model.model_validate(view)`), so an entity has one shape
family, not a hand mapper per route. Request models forbid unknown fields,
so a misspelt `expiresInMinute` is a 400 naming it rather than a silently ignored option.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from switchboard import ids

# User ids are token subjects: the one id rule (switchboard.ids) decides here and in
# switchboard.auth alike, so dev login never issues a token that authentication then refuses.
# The length bounds are repeated only so that the OpenAPI schema shows them.
UserId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ids.MAX_ID_LENGTH),
    AfterValidator(lambda value: ids.check_id(value, "userId")),
]
DisplayName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class ApiModel(BaseModel):
    """Base of every wire model: camelCase aliases, accepted by alias or by name, and built from
    a service view's attributes."""

    # defer_build: validators are built on first use, not at import (cold start matters here).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, from_attributes=True, defer_build=True
    )


class RequestModel(ApiModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=False,  # a request is parsed from JSON only
        extra="forbid",
        defer_build=True,
    )


class PageQuery(RequestModel):
    """The one paging vocabulary of every paged route: `pageSize` items per page, and the
    previous page's `continuation` to get the next. A route's query subclasses this and sets
    its own default and largest `pageSize`."""

    continuation: str | None = Field(
        None,
        max_length=4096,
        description="The previous page's `continuation`; absent for the first page.",
    )
    page_size: int = Field(50, ge=1, le=100, description="Items per page.")


Item = TypeVar("Item", bound=BaseModel)


class Page(ApiModel, Generic[Item]):
    """One page of a paged route's answer: its items, and the continuation to pass back."""

    items: list[Item]
    continuation: str | None = Field(
        description="Pass it back as `continuation` for the next page; null on the last page."
    )


class ProblemDetails(ApiModel):
    """RFC 9457 problem details with Switchboard's stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
