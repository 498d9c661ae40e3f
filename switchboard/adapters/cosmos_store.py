"""The Azure DocumentStore: Cosmos DB (NoSQL API) through `azure.cosmos.aio`.

One `CosmosClient` per process, created on first use and reused. Each port operation is one
Cosmos operation (point read, ReadMany, create, replace/delete with If-Match, upsert, or a
single-partition query) and returns documents in the port's shape: the stored fields plus
`_etag` and `_ts`, with Cosmos's other system fields (`_rid`, `_self`, `_attachments`) removed so
both adapters look alike. SDK errors become the port's exceptions; throttling (429), a busy or
timed-out service (503, 408) and connection failures become `DependencyUnavailable` carrying the
service's own retry hint.

The app never creates containers at run time (infra/ declares them); `create_database_and_
containers` exists for tests and tooling only. `azure.cosmos` is imported on first use, so
importing this module costs nothing when the app runs on SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NoReturn, cast

from switchboard.adapters import azure as kit
from switchboard.adapters._store_rules import (
    SYSTEM_FIELDS,
    FilterValue,
    RangeValue,
    check_container,
    check_field,
    check_key,
    check_limit,
    check_range,
    check_where,
    decode_continuation,
    document_body,
    encode_continuation,
)
from switchboard.errors import DependencyUnavailable, InvalidInput
from switchboard.ports import (
    CONTAINERS,
    Doc,
    DocumentExists,
    DocumentNotFound,
    Page,
    PreconditionFailed,
)

if TYPE_CHECKING:
    from azure.core.async_paging import AsyncPageIterator
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import HttpResponseError
    from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy

# Cosmos keeps these, but the port's documents carry only `_etag` and `_ts`.
_HIDDEN_FIELDS = SYSTEM_FIELDS - {"_etag", "_ts"}

# Status codes that mean "try again later" rather than "your request is wrong" (with every 5xx):
# 449 is Cosmos's "retry with", a write that raced another.
_RETRYABLE_STATUS = frozenset({408, 429, 449})

# Cosmos's 404 sub-status when the database or container itself is missing: a deployment
# problem, not a missing document, so it must not read as "no such document".
_OWNER_RESOURCE_MISSING = 1003

# @vercel/cosmosdb-server answers a point read of a missing document with a 500 (it reads a
# property of the missing document) unless the request carries this header, which makes it take
# its plain lookup path and answer 404. Real Cosmos ignores the header on point reads: the SDK's
# own ReadMany sends it on the point reads it makes for single-key chunks
# (azure/cosmos/aio/_read_items_helper_async.py, options["enableCrossPartitionQuery"]).
_POINT_READ_HEADERS = {"x-ms-documentdb-query-enablecrosspartition": "true"}

# Throttling retries inside the SDK before a 429 reaches us. The SDK's default (9 retries over up
# to 30 s) would hold an HTTP request far longer than a client waits; after a few tries it is
# better to answer 503 with Retry-After and let the client come back.
_PRODUCTION_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_throttle_total": 3,
    "retry_throttle_backoff_max": 5,
}


def _port_shape(item: Mapping[str, Any]) -> Doc:
    return {name: value for name, value in item.items() if name not in _HIDDEN_FIELDS}


logger = logging.getLogger("switchboard.cosmos")

DEPENDENCY = "store"


def _unavailable(error: BaseException) -> NoReturn:
    kit.unavailable(DEPENDENCY, error)


def _cosmos_status(error: HttpResponseError) -> None:
    """Cosmos's own statuses as the port's exceptions; the kit maps the rest."""
    status = error.status_code
    if status == 404:
        if getattr(error, "sub_status", None) == _OWNER_RESOURCE_MISSING:
            _unavailable(error)
        raise DocumentNotFound(str(error.message or "not found")) from None
    if status == 409:
        raise DocumentExists("the document already exists") from None
    if status == 412:
        raise PreconditionFailed("the document changed since it was read") from None


@contextmanager
def _port_errors(operation: str = "request") -> Iterator[None]:
    """Turn SDK failures inside the block into the port's exceptions.

    404 becomes DocumentNotFound (the operations that answer None/False catch it), 409
    DocumentExists, 412 PreconditionFailed; throttling, server trouble, refused credentials and
    connection failures DependencyUnavailable (see `adapters.azure.sdk_errors`). Anything else
    (a 400: our bug) propagates as it is.
    """
    from azure.cosmos.exceptions import CosmosClientTimeoutError

    with kit.sdk_errors(
        DEPENDENCY,
        service="Cosmos DB",
        check="COSMOS_KEY, or the managed identity's Cosmos DB Built-in Data Contributor role",
        operation=operation,
        on_status=_cosmos_status,
        retryable=_RETRYABLE_STATUS,
        connection_errors=(CosmosClientTimeoutError,),
        log=logger,
    ):
        yield


@contextmanager
def _refused_continuation(cosmos_token: str | None) -> Iterator[None]:
    """A 400 from Cosmos to a query that carried a caller's continuation is that token's fault
    (a caller can wrap any inner token in the right outer shape): InvalidInput, not a 500."""
    from azure.cosmos.exceptions import CosmosHttpResponseError

    try:
        yield
    except CosmosHttpResponseError as error:
        if cosmos_token is not None and error.status_code == 400:
            raise InvalidInput(
                "The continuation token is not valid.", field="continuation"
            ) from None
        raise


def _ref(field: str) -> str:
    # Bracket form, so a name that is also an SQL keyword such as `value` still works; only
    # after `check_field` proved it a plain identifier.
    return f'c["{check_field(field)}"]'


def _typed(ref: str, value: FilterValue) -> str:
    """Cosmos's type check for `value`'s JSON type: a comparison with a field of another type
    is undefined in Cosmos, and NOT of undefined stays undefined; this keeps it a boolean."""
    if isinstance(value, bool):
        return f"IS_BOOL({ref})"
    if isinstance(value, int | float):
        return f"IS_NUMBER({ref})"
    return f"IS_STRING({ref})"


def _conditions(
    filters: list[tuple[str, FilterValue]], prefix: str, *, negatable: bool = False
) -> tuple[list[str], list[dict[str, Any]]]:
    """Equality conditions. In a WHERE, Cosmos's own `=` is already typed (a field of another
    type compares undefined: no match); `negatable` adds the type check so NOT works too."""
    conditions: list[str] = []
    parameters: list[dict[str, Any]] = []
    for index, (field, value) in enumerate(filters):
        ref = _ref(field)
        if value is None:
            # None means "null or absent": Cosmos's `= null` alone would miss absent fields.
            conditions.append(f"(NOT IS_DEFINED({ref}) OR IS_NULL({ref}))")
        else:
            name = f"@{prefix}{index}"
            equal = f"{ref} = {name}"
            conditions.append(f"({_typed(ref, value)} AND {equal})" if negatable else equal)
            parameters.append({"name": name, "value": value})
    return conditions, parameters


def _query_text(
    filters: list[tuple[str, FilterValue]],
    order_by: str | None,
    descending: bool,
    start_at: RangeValue | None = None,
    end_before: RangeValue | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Parameterised Cosmos SQL for one partition; values never enter the text, field names do
    (`_ref`)."""
    conditions, parameters = _conditions(filters, "v")
    conditions.insert(0, "c.pk = @pk")
    if order_by is not None and start_at is not None:
        conditions.append(f"{_ref(order_by)} >= @start")
        parameters.append({"name": "@start", "value": start_at})
    if order_by is not None and end_before is not None:
        conditions.append(f"{_ref(order_by)} < @end")
        parameters.append({"name": "@end", "value": end_before})
    text = "SELECT * FROM c WHERE " + " AND ".join(conditions)  # noqa: S608 (names checked)
    if order_by is not None:
        text += f" ORDER BY {_ref(order_by)} {'DESC' if descending else 'ASC'}"
    return text, parameters


def _count_text(
    filters: list[tuple[str, FilterValue]], exclusions: list[tuple[str, FilterValue]]
) -> tuple[str, list[dict[str, Any]]]:
    """`SELECT VALUE COUNT(1)` over one partition: an index-only aggregate, one round trip."""
    conditions, parameters = _conditions(filters, "v")
    excluded, excluded_parameters = _conditions(exclusions, "x", negatable=True)
    # Each exclusion is a boolean (typed above), so NOT of it is exact.
    conditions += [f"NOT {condition}" for condition in excluded]
    where = " AND ".join(["c.pk = @pk", *conditions])
    text = f"SELECT VALUE COUNT(1) FROM c WHERE {where}"  # noqa: S608 (names checked)
    return text, [*parameters, *excluded_parameters]


class CosmosStore:
    """A `DocumentStore` on a Cosmos DB database whose containers all have partition key /pk."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        credential: str | AsyncTokenCredential,
        *,
        connection_verify: bool = True,
        owns_credential: bool = False,
        **client_options: Any,
    ) -> None:
        """`credential` is the account key or an async token credential (managed identity).

        `client_options` go to `CosmosClient` as they are (retry and timeout settings, for
        instance `retry_total=0` in tests). With `owns_credential`, `close()` closes the
        credential too.
        """
        self._endpoint = endpoint
        self._database_name = database
        self._credential = credential
        self._owns_credential = owns_credential
        self._client_options = {"connection_verify": connection_verify, **client_options}
        self._client: CosmosClient | None = None
        self._database: DatabaseProxy | None = None
        self._containers: dict[str, ContainerProxy] = {}

    @classmethod
    def from_settings(
        cls,
        endpoint: str,
        database: str,
        key: str | None,
        managed_identity_client_id: str | None,
    ) -> CosmosStore:
        """The production store: the account key when given, else a managed identity.

        With `managed_identity_client_id` (AZURE_CLIENT_ID) the user-assigned identity is used;
        without it `DefaultAzureCredential`, which finds the system-assigned identity in Azure
        and the developer's `az login` on a workstation.
        """
        if key:
            return cls(endpoint, database, key, **_PRODUCTION_CLIENT_OPTIONS)
        return cls(
            endpoint,
            database,
            kit.credential(managed_identity_client_id),
            owns_credential=True,
            **_PRODUCTION_CLIENT_OPTIONS,
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _database_proxy(self) -> DatabaseProxy:
        if self._database is None:
            from azure.cosmos.aio import CosmosClient

            # No await between the check and the assignment: concurrent first calls cannot
            # build two clients.
            self._client = CosmosClient(self._endpoint, self._credential, **self._client_options)
            self._database = self._client.get_database_client(self._database_name)
        return self._database

    def _container(self, name: str) -> ContainerProxy:
        check_container(name)
        proxy = self._containers.get(name)
        if proxy is None:
            proxy = self._database_proxy().get_container_client(name)
            self._containers[name] = proxy
        return proxy

    # -- the port ----------------------------------------------------------------------------

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        proxy = self._container(container)
        check_key(pk, id)
        try:
            with _port_errors("read"):
                # `headers=` is azure-core's per-request header option (HeadersPolicy).
                item = await proxy.read_item(
                    item=id, partition_key=pk, headers=dict(_POINT_READ_HEADERS)
                )
        except DocumentNotFound:
            return None
        return _port_shape(item)

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        """The documents found, in the order of `keys` (each once, even if asked twice)."""
        proxy = self._container(container)
        unique = list(dict.fromkeys((pk, id) for pk, id in keys))
        for pk, id in unique:
            check_key(pk, id)
        if not unique:
            return []
        with _port_errors("read_many"):
            items = await proxy.read_items(items=[(id, pk) for pk, id in unique])
        # The SDK promises input order, but matches results to keys by id alone, which is not
        # unique across partitions; re-ordering by (pk, id) here is exact.
        found = {(item["pk"], item["id"]): _port_shape(item) for item in items}
        return [found[key] for key in unique if key in found]

    async def create(self, container: str, doc: Doc) -> Doc:
        proxy = self._container(container)
        _, _, body = document_body(doc)
        with _port_errors("create"):
            item = await proxy.create_item(body)
        return _port_shape(item)

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        from azure.core import MatchConditions

        proxy = self._container(container)
        _, id, body = document_body(doc)
        with _port_errors("replace"):
            item = await proxy.replace_item(
                item=id, body=body, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        return _port_shape(item)

    async def upsert(self, container: str, doc: Doc) -> Doc:
        proxy = self._container(container)
        _, _, body = document_body(doc)
        with _port_errors("upsert"):
            item = await proxy.upsert_item(body)
        return _port_shape(item)

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        from azure.core import MatchConditions

        proxy = self._container(container)
        check_key(pk, id)
        condition: dict[str, Any] = {}
        if etag is not None:
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            with _port_errors("delete"):
                await proxy.delete_item(item=id, partition_key=pk, **condition)
        except DocumentNotFound:
            return False
        return True

    async def query(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, FilterValue] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        start_at: RangeValue | None = None,
        end_before: RangeValue | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """One page of a partition's documents; see `SqliteStore.query` for the semantics.

        The continuation is Cosmos's own token wrapped in URL-safe base64 (Cosmos tokens are
        JSON, unfit for a query string) together with the query's ordering, so a token from
        another ordering is refused instead of silently misused.
        """
        proxy = self._container(container)
        check_key(pk, "-")
        filters = check_where(where)
        check_limit(limit)
        bounded = check_range(order_by, start_at, end_before)
        text, parameters = _query_text(filters, order_by, descending, start_at, end_before)

        shape: list[Any] = [order_by, descending]
        if bounded:
            shape += [start_at, end_before]
        cosmos_token: str | None = None
        if continuation is not None:
            state = decode_continuation(continuation)
            token = state.get("c") if isinstance(state, dict) else None
            if not (isinstance(state, dict) and state.get("s") == shape and isinstance(token, str)):
                raise InvalidInput("The continuation token is not valid.", field="continuation")
            cosmos_token = token

        items: list[Doc] = []
        with _port_errors("query"), _refused_continuation(cosmos_token):
            # by_page is typed as a plain AsyncIterator; it is an AsyncPageIterator, whose
            # continuation_token is the point of paging.
            pages = cast(
                "AsyncPageIterator[dict[str, Any]]",
                proxy.query_items(
                    text,
                    parameters=[{"name": "@pk", "value": pk}, *parameters],
                    partition_key=pk,
                    max_item_count=limit,
                ).by_page(cosmos_token),
            )
            # Cosmos may answer a page with no items yet a continuation (time or RU budget);
            # keep going so a page is empty only at the very end.
            async for page in pages:
                items = [_port_shape(item) async for item in page]
                if items or pages.continuation_token is None:
                    break
            next_token = pages.continuation_token
        if next_token is None:
            return Page(items=items, continuation=None)
        return Page(items=items, continuation=encode_continuation({"s": shape, "c": next_token}))

    async def count(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, FilterValue] | None = None,
        where_not: Mapping[str, FilterValue] | None = None,
    ) -> int:
        """One `SELECT VALUE COUNT(1)` in the partition (served from the index)."""
        proxy = self._container(container)
        check_key(pk, "-")
        text, parameters = _count_text(check_where(where), check_where(where_not))
        with _port_errors("count"):
            results: list[Any] = [
                value
                async for value in proxy.query_items(
                    text, parameters=[{"name": "@pk", "value": pk}, *parameters], partition_key=pk
                )
            ]
        # One partition: one value (an empty partition counts 0, never no answer).
        return int(sum(results))

    async def ping(self) -> None:
        # Every container, in one concurrent round: a deleted container fails every request that
        # needs it, so health must see it too, and a container read is a cheap metadata call.
        import asyncio

        from azure.core.exceptions import HttpResponseError

        async def missing(name: str) -> bool:
            """True when the container (or its database) is gone; other failures raise."""
            try:
                with _port_errors("ping"):
                    try:
                        await self._container(name).read()
                    except HttpResponseError as error:
                        # Any 404 on a container read is a missing container or database: a
                        # deployment problem, seen here before the kit maps it.
                        if error.status_code == 404:
                            return True
                        raise
            except DocumentNotFound:
                return True
            return False

        names = list(CONTAINERS)
        results = await asyncio.gather(*(missing(n) for n in names), return_exceptions=True)
        gone = [n for n, r in zip(names, results, strict=True) if r is True]
        if gone:
            logger.error("Cosmos DB containers missing (health check): %s", ", ".join(gone))
            raise DependencyUnavailable(DEPENDENCY, retry_after=5)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def close(self) -> None:
        client, self._client = self._client, None
        self._database = None
        self._containers.clear()
        if client is not None:
            await client.close()
        if self._owns_credential and not isinstance(self._credential, str):
            await self._credential.close()


async def create_database_and_containers(
    endpoint: str,
    database: str,
    credential: str | AsyncTokenCredential,
    **client_options: Any,
) -> None:
    """Create `database` and every container of `CONTAINERS` with partition key /pk.

    For tests and tooling only: in Azure, infra/ declares the same resources and the app's
    identity has no right to create them.
    """
    from azure.cosmos import PartitionKey
    from azure.cosmos.aio import CosmosClient
    from azure.cosmos.exceptions import CosmosResourceExistsError

    # Create, and take "exists" as success: one request per resource when they are new (a test's
    # fresh database), where *_if_not_exists would read first and then create.
    async with CosmosClient(endpoint, credential, **client_options) as client:
        with suppress(CosmosResourceExistsError):
            await client.create_database(database)
        db = client.get_database_client(database)
        for name, ttl in CONTAINERS.items():
            with suppress(CosmosResourceExistsError):
                await db.create_container(
                    name, partition_key=PartitionKey(path="/pk"), default_ttl=ttl
                )
