"""The DocumentStore contract: every test runs on SQLite and on Cosmos DB (the `store` fixture).

Whatever a service may rely on is pinned here, so swapping the adapter never changes behaviour.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.errors import InvalidInput
from switchboard.ports import DocumentExists, DocumentNotFound, DocumentStore, PreconditionFailed

C = "clubs"  # any container works; the tests use one of the app's


def doc(pk: str, id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "pk": pk, **fields}


def user_fields(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if k not in ("_etag", "_ts")}


async def collect(store: DocumentStore, pk: str, **query: Any) -> list[dict[str, Any]]:
    """Every document of a query, following continuations to the end."""
    items: list[dict[str, Any]] = []
    continuation = None
    for _ in range(100):
        page = await store.query(C, pk, continuation=continuation, **query)
        assert len(page.items) <= query.get("limit", 100)
        items += page.items
        continuation = page.continuation
        if continuation is None:
            return items
    raise AssertionError("the query never ended")


# -- shape and CRUD ----------------------------------------------------------------------------


async def test_create_returns_the_document_with_etag_and_ts_only(store: DocumentStore) -> None:
    given = doc("p", "a", name="Ada", n=1, tags=["x"], nested={"k": None})
    created = await store.create(C, given)
    assert user_fields(created) == given
    assert set(created) == {*given, "_etag", "_ts"}
    assert isinstance(created["_etag"], str)
    assert created["_etag"]
    assert isinstance(created["_ts"], int)
    assert created["_ts"] > 1_600_000_000
    assert given == doc("p", "a", name="Ada", n=1, tags=["x"], nested={"k": None})  # untouched


async def test_read_returns_what_was_written(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a", name="Zoë 🚀", n=2.5, ok=True))
    assert await store.read(C, "p", "a") == created


async def test_read_of_a_missing_document_is_none(store: DocumentStore) -> None:
    assert await store.read(C, "p", "nope") is None


async def test_system_fields_sent_in_are_ignored(store: DocumentStore) -> None:
    created = await store.create(
        C, doc("p", "a", _etag="forged", _ts=1, _rid="r", _self="s", _attachments="x")
    )
    assert created["_etag"] != "forged"
    assert created["_ts"] != 1
    read = await store.read(C, "p", "a")
    assert read is not None
    assert set(read) == {"id", "pk", "_etag", "_ts"}


async def test_etag_changes_on_every_write(store: DocumentStore) -> None:
    first = await store.create(C, doc("p", "a", n=1))
    second = await store.replace(C, doc("p", "a", n=2), first["_etag"])
    third = await store.upsert(C, doc("p", "a", n=3))
    fourth = await store.upsert(C, doc("p", "a", n=3))
    etags = [first["_etag"], second["_etag"], third["_etag"], fourth["_etag"]]
    assert len(set(etags)) == 4
    read = await store.read(C, "p", "a")
    assert read is not None
    assert read["_etag"] == fourth["_etag"]


async def test_create_of_an_existing_id_conflicts_and_changes_nothing(
    store: DocumentStore,
) -> None:
    original = await store.create(C, doc("p", "a", n=1))
    with pytest.raises(DocumentExists):
        await store.create(C, doc("p", "a", n=2))
    assert await store.read(C, "p", "a") == original


async def test_the_same_id_in_another_partition_is_another_document(store: DocumentStore) -> None:
    await store.create(C, doc("p1", "a", n=1))
    await store.create(C, doc("p2", "a", n=2))
    one, two = await store.read(C, "p1", "a"), await store.read(C, "p2", "a")
    assert one is not None
    assert one["n"] == 1
    assert two is not None
    assert two["n"] == 2


async def test_replace_with_the_current_etag_replaces(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a", n=1, dropped="x"))
    replaced = await store.replace(C, doc("p", "a", n=2), created["_etag"])
    assert user_fields(replaced) == doc("p", "a", n=2)
    assert await store.read(C, "p", "a") == replaced


async def test_replace_accepts_a_document_as_read(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a", n=1))
    changed = {**created, "n": 2}  # still carries _etag and _ts
    replaced = await store.replace(C, changed, created["_etag"])
    assert user_fields(replaced) == doc("p", "a", n=2)


async def test_replace_with_a_stale_etag_fails_and_changes_nothing(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a", n=1))
    current = await store.replace(C, doc("p", "a", n=2), created["_etag"])
    with pytest.raises(PreconditionFailed):
        await store.replace(C, doc("p", "a", n=3), created["_etag"])
    assert await store.read(C, "p", "a") == current


async def test_replace_of_a_missing_document_is_not_found(store: DocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        await store.replace(C, doc("p", "nope", n=1), "any-etag")
    assert await store.read(C, "p", "nope") is None


async def test_upsert_inserts_then_replaces(store: DocumentStore) -> None:
    inserted = await store.upsert(C, doc("p", "a", n=1))
    assert user_fields(inserted) == doc("p", "a", n=1)
    replaced = await store.upsert(C, doc("p", "a", n=2))
    assert await store.read(C, "p", "a") == replaced
    assert replaced["n"] == 2


async def test_delete_without_etag(store: DocumentStore) -> None:
    await store.create(C, doc("p", "a"))
    assert await store.delete(C, "p", "a") is True
    assert await store.read(C, "p", "a") is None
    assert await store.delete(C, "p", "a") is False


async def test_delete_with_the_current_etag(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a"))
    assert await store.delete(C, "p", "a", etag=created["_etag"]) is True
    assert await store.read(C, "p", "a") is None


async def test_delete_with_a_stale_etag_fails_and_keeps_the_document(
    store: DocumentStore,
) -> None:
    created = await store.create(C, doc("p", "a", n=1))
    current = await store.upsert(C, doc("p", "a", n=2))
    with pytest.raises(PreconditionFailed):
        await store.delete(C, "p", "a", etag=created["_etag"])
    assert await store.read(C, "p", "a") == current


async def test_delete_of_a_missing_document_is_false(store: DocumentStore) -> None:
    assert await store.delete(C, "p", "nope") is False
    assert await store.delete(C, "p", "nope", etag="whatever") is False


# -- read_many ---------------------------------------------------------------------------------


async def test_read_many_skips_missing_and_keeps_the_keys_order(store: DocumentStore) -> None:
    for pk, id in [("p1", "a"), ("p1", "b"), ("p2", "a"), ("p2", "c")]:
        await store.create(C, doc(pk, id, at=f"{pk}/{id}"))
    keys = [("p2", "c"), ("p1", "missing"), ("p1", "a"), ("p2", "a"), ("p3", "a"), ("p1", "b")]
    found = await store.read_many(C, keys)
    assert [d["at"] for d in found] == ["p2/c", "p1/a", "p2/a", "p1/b"]
    assert all("_etag" in d and "_ts" in d and "_rid" not in d for d in found)


async def test_read_many_of_nothing_is_empty(store: DocumentStore) -> None:
    assert await store.read_many(C, []) == []
    assert await store.read_many(C, [("p", "missing")]) == []


async def test_read_many_returns_each_document_once(store: DocumentStore) -> None:
    await store.create(C, doc("p", "a"))
    found = await store.read_many(C, [("p", "a"), ("p", "a")])
    assert [d["id"] for d in found] == ["a"]


async def test_read_many_of_one_key(store: DocumentStore) -> None:
    created = await store.create(C, doc("p", "a", n=1))
    assert await store.read_many(C, [("p", "a")]) == [created]


# -- query -------------------------------------------------------------------------------------


async def seed_people(store: DocumentStore) -> None:
    people = [
        doc("p", "1", name="ann", age=30, admin=True, team="red"),
        doc("p", "2", name="bob", age=25, admin=False, team=None),
        doc("p", "3", name="cyd", age=35, admin=False),
        doc("p", "4", name="dee", age=30, admin=True, team="blue"),
        doc("other", "5", name="eve", age=30, admin=True, team="red"),
    ]
    for person in people:
        await store.create(C, person)


async def ids(store: DocumentStore, pk: str = "p", **query: Any) -> list[str]:
    return [d["id"] for d in await collect(store, pk, **query)]


async def test_query_without_filters_returns_the_whole_partition(store: DocumentStore) -> None:
    await seed_people(store)
    assert sorted(await ids(store)) == ["1", "2", "3", "4"]


async def test_query_equality_filters_combine_with_and(store: DocumentStore) -> None:
    await seed_people(store)
    assert sorted(await ids(store, where={"age": 30})) == ["1", "4"]
    assert sorted(await ids(store, where={"age": 30, "team": "red"})) == ["1"]
    assert sorted(await ids(store, where={"admin": False})) == ["2", "3"]
    assert sorted(await ids(store, where={"name": "ann", "admin": False})) == []
    assert sorted(await ids(store, where={"id": "3"})) == ["3"]


async def test_query_none_matches_null_or_absent(store: DocumentStore) -> None:
    await seed_people(store)
    assert sorted(await ids(store, where={"team": None})) == ["2", "3"]


async def test_query_compares_values_with_their_json_type(store: DocumentStore) -> None:
    await store.create(C, doc("p", "int", v=1))
    await store.create(C, doc("p", "float", v=1.0))
    await store.create(C, doc("p", "str", v="1"))
    await store.create(C, doc("p", "true", v=True))
    await store.create(C, doc("p", "list", v=[1]))
    assert sorted(await ids(store, where={"v": 1})) == ["float", "int"]
    assert sorted(await ids(store, where={"v": 1.0})) == ["float", "int"]
    assert await ids(store, where={"v": "1"}) == ["str"]
    assert await ids(store, where={"v": True}) == ["true"]


async def test_query_order_by_ascending_and_descending(store: DocumentStore) -> None:
    await seed_people(store)
    assert [d["name"] for d in await collect(store, "p", order_by="name")] == [
        "ann",
        "bob",
        "cyd",
        "dee",
    ]
    ages = [d["age"] for d in await collect(store, "p", order_by="age", descending=True)]
    assert ages == [35, 30, 30, 25]
    filtered = await collect(store, "p", where={"admin": False}, order_by="age")
    assert [d["id"] for d in filtered] == ["2", "3"]


@pytest.mark.parametrize(
    "ordering",
    [{}, {"order_by": "n"}, {"order_by": "n", "descending": True}, {"order_by": "group"}],
    ids=["unordered", "ascending", "descending", "with-ties"],
)
async def test_paging_returns_every_document_exactly_once(
    store: DocumentStore, ordering: dict[str, Any]
) -> None:
    for n in range(25):
        await store.create(C, doc("p", f"d{n:02}", n=n, group=n % 3))
    await store.create(C, doc("elsewhere", "x", n=0, group=0))
    found = await collect(store, "p", limit=7, **ordering)
    found_ids = [d["id"] for d in found]
    assert sorted(found_ids) == [f"d{n:02}" for n in range(25)]
    if ordering.get("order_by") == "n":
        numbers = [d["n"] for d in found]
        assert numbers == sorted(numbers, reverse=ordering.get("descending", False))
    if ordering.get("order_by") == "group":
        groups = [d["group"] for d in found]
        assert groups == sorted(groups)


async def test_a_page_holds_at_most_limit_documents(store: DocumentStore) -> None:
    for n in range(5):
        await store.create(C, doc("p", f"d{n}", n=n))
    page = await store.query(C, "p", order_by="n", limit=2)
    assert [d["n"] for d in page.items] == [0, 1]
    assert page.continuation is not None
    assert isinstance(page.continuation, str)
    last = await store.query(C, "p", order_by="n", limit=10)
    assert len(last.items) == 5
    assert last.continuation is None


async def test_continuation_tokens_are_url_safe(store: DocumentStore) -> None:
    for n in range(3):
        await store.create(C, doc("p", f"d{n}", n=n, s='"quoted" & #hash'))
    page = await store.query(C, "p", order_by="s", limit=1)
    assert page.continuation is not None
    assert all(ch.isalnum() or ch in "-_" for ch in page.continuation)


async def test_a_bad_continuation_is_invalid_input(store: DocumentStore) -> None:
    for n in range(3):
        await store.create(C, doc("p", f"d{n}", n=n))
    for token in ["garbage!!", "e30", "bm90LWpzb24"]:  # not base64, "{}", "not-json"
        with pytest.raises(InvalidInput):
            await store.query(C, "p", continuation=token)
    ascending = await store.query(C, "p", order_by="n", limit=1)
    assert ascending.continuation is not None
    with pytest.raises(InvalidInput):  # a token from another ordering
        await store.query(
            C, "p", order_by="n", descending=True, continuation=ascending.continuation
        )


async def test_query_never_crosses_partitions(store: DocumentStore) -> None:
    await store.create(C, doc("A", "1", team="red"))
    await store.create(C, doc("A", "2", team="red"))
    await store.create(C, doc("B", "3", team="red"))
    await store.create(C, doc("AB", "4", team="red"))
    await store.create(C, doc("a", "5", team="red"))
    assert sorted(await ids(store, "A")) == ["1", "2"]
    assert sorted(await ids(store, "A", where={"team": "red"})) == ["1", "2"]
    assert await ids(store, "B", order_by="team") == ["3"]
    assert await ids(store, "nobody") == []


async def test_values_with_quotes_are_only_values(store: DocumentStore) -> None:
    tricky = "O'Brien \"the\" ]); DROP TABLE documents; -- \\ ' OR '1'='1"
    await store.create(C, doc("p", "1", name=tricky))
    await store.create(C, doc("p", "2", name="plain"))
    assert await ids(store, where={"name": tricky}) == ["1"]
    assert await ids(store, where={"name": "' OR '1'='1"}) == []
    found = await ids(store, tricky, where={"name": tricky})  # a hostile partition key too
    assert found == []
    assert sorted(await ids(store)) == ["1", "2"]


@pytest.mark.parametrize(
    "field",
    [
        "name; DROP TABLE documents",
        'name"] OR 1=1 --',
        "name') OR 1=1 --",
        "a.b",
        "$.name",
        "a b",
        "",
        "1st",
        "naïve",
    ],
)
async def test_hostile_field_names_are_refused(store: DocumentStore, field: str) -> None:
    with pytest.raises(ValueError, match="field name"):
        await store.query(C, "p", where={field: "x"})
    with pytest.raises(ValueError, match="field name"):
        await store.query(C, "p", order_by=field)


async def test_a_field_named_like_a_keyword_works(store: DocumentStore) -> None:
    await store.create(C, doc("p", "1", value=3, select="x", order=1))
    assert await ids(store, where={"value": 3, "select": "x"}, order_by="order") == ["1"]


async def test_filter_values_must_be_scalars(store: DocumentStore) -> None:
    with pytest.raises(ValueError, match="only"):
        await store.query(C, "p", where={"tags": ["x"]})  # type: ignore[dict-item]


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_must_be_sensible(store: DocumentStore, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.query(C, "p", limit=limit)


# -- names and keys ----------------------------------------------------------------------------


async def test_unknown_containers_are_refused(store: DocumentStore) -> None:
    bad = "nope"
    operations = [
        store.read(bad, "p", "a"),
        store.read_many(bad, [("p", "a")]),
        store.create(bad, doc("p", "a")),
        store.replace(bad, doc("p", "a"), "etag"),
        store.upsert(bad, doc("p", "a")),
        store.delete(bad, "p", "a"),
        store.query(bad, "p"),
    ]
    for operation in operations:
        with pytest.raises(ValueError, match="unknown container"):
            await operation


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "a/b",
        "a\\b",
        "a?b",
        "a#b",
        "x" * 256,
        ".",
        "..",
        "a\nb",
        "carol\n",
        "a\x00b",
        "a\x7f",
        "\x85",
    ],
)
async def test_ids_cosmos_cannot_store_are_refused(store: DocumentStore, bad_id: str) -> None:
    with pytest.raises(ValueError, match="id"):
        await store.create(C, doc("p", bad_id))
    with pytest.raises(ValueError, match="id"):
        await store.read(C, "p", bad_id)


async def test_documents_need_string_keys(store: DocumentStore) -> None:
    with pytest.raises(ValueError, match="pk"):
        await store.create(C, {"id": "a"})
    with pytest.raises(ValueError, match="pk"):
        await store.create(C, {"id": "a", "pk": 1})
    with pytest.raises(ValueError, match="id"):
        await store.create(C, {"pk": "p"})


async def test_every_container_of_the_app_is_usable(store: DocumentStore) -> None:
    from switchboard.ports import CONTAINERS

    for container in CONTAINERS:
        await store.create(container, doc("p", "a", container=container))
    for container in CONTAINERS:
        found = await store.read(container, "p", "a")
        assert found is not None
        assert found["container"] == container


async def test_ping_answers_when_the_store_is_up(store: DocumentStore) -> None:
    await store.ping()


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_creates_of_one_id_let_exactly_one_win(store: DocumentStore) -> None:
    attempts = [store.create(C, doc("p", "race", writer=n)) for n in range(20)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert sum(isinstance(r, DocumentExists) for r in results) == 19
    assert await store.read(C, "p", "race") == winners[0]


async def test_concurrent_replaces_with_one_etag_let_exactly_one_win(
    store: DocumentStore,
) -> None:
    created = await store.create(C, doc("p", "race", writer=None))
    attempts = [store.replace(C, doc("p", "race", writer=n), created["_etag"]) for n in range(20)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert sum(isinstance(r, PreconditionFailed) for r in results) == 19
    assert await store.read(C, "p", "race") == winners[0]


async def test_concurrent_readers_and_writers_see_whole_documents(store: DocumentStore) -> None:
    await store.create(C, doc("p", "a", n=0, copy=0))

    async def write(n: int) -> None:
        await store.upsert(C, doc("p", "a", n=n, copy=n))

    async def read() -> None:
        found = await store.read(C, "p", "a")
        assert found is not None
        assert found["n"] == found["copy"]

    await asyncio.gather(*(op for n in range(1, 21) for op in (write(n), read())))


async def test_a_hostile_continuation_is_invalid_input(store: DocumentStore) -> None:
    # A caller controls the token: nested beyond the JSON decoder's recursion limit, holding a
    # lone surrogate (no store can encode it), or merely huge, it is a bad token, never a 500.
    import base64

    for n in range(3):
        await store.create(C, doc("p", f"d{n}", n=n))

    def token(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    page = await store.query(C, "p", order_by="n", limit=1)
    assert page.continuation is not None
    real = base64.urlsafe_b64decode(page.continuation + "=" * (-len(page.continuation) % 4))
    hostile = [
        token(b"[" * 100_000 + b"]" * 100_000),
        token(b'{"s":[null,false],"i":' + b"[" * 5_000 + b"]" * 5_000 + b"}"),
        token(b'{"s":[null,false],"i":"\\ud800"}'),
        token(b'{"s":["n",false],"i":"d0","k":"\\udfff"}'),
        token(b'{"s":["n",false],"c":"\\ud800"}'),
        token(real.replace(b'"s":', b'"z":"\\ud800","s":', 1)),
        "A" * 100_000,
    ]
    for bad in hostile:
        orderings: list[dict[str, Any]] = [{}, {"order_by": "n"}]
        for ordering in orderings:
            with pytest.raises(InvalidInput):
                await store.query(C, "p", continuation=bad, limit=1, **ordering)


# -- count -------------------------------------------------------------------------------------


async def test_count_counts_one_partition_with_typed_filters(store: DocumentStore) -> None:
    for n, status in enumerate(["accepted", "accepted", "incoming", "blocked", "blocked"]):
        await store.create(C, doc("p", f"d{n}", status=status))
    await store.create(C, doc("p", "one", status=1))
    await store.create(C, doc("p", "true", status=True))
    await store.create(C, doc("p", "none", status=None))
    await store.create(C, doc("p", "absent"))
    await store.create(C, doc("other", "x", status="accepted"))

    assert await store.count(C, "p") == 9
    assert await store.count(C, "nobody") == 0
    assert await store.count(C, "p", where={"status": "accepted"}) == 2
    assert await store.count(C, "p", where={"status": 1}) == 1
    assert await store.count(C, "p", where={"status": True}) == 1
    assert await store.count(C, "p", where={"status": None}) == 2
    # where_not leaves out only typed matches: absent, null, 1 and True are counted.
    assert await store.count(C, "p", where_not={"status": "blocked"}) == 7
    assert await store.count(C, "p", where_not={"status": None}) == 7
    assert await store.count(C, "p", where_not={"status": 1}) == 8
    assert (
        await store.count(C, "p", where={"status": "accepted"}, where_not={"status": "blocked"})
        == 2
    )
    with pytest.raises(ValueError, match="plain identifier"):
        await store.count(C, "p", where={"bad name": 1})
    with pytest.raises(ValueError, match="only str, int"):
        await store.count(C, "p", where_not={"x": [1]})  # type: ignore[dict-item]


# -- range -------------------------------------------------------------------------------------


async def test_a_range_bounds_the_order_field(store: DocumentStore) -> None:
    # Distinct values: the order among equal sort keys is not part of the contract.
    starts = ["2026-01-01", "2026-01-02", "2026-01-02T12", "2026-01-03", "2026-01-04"]
    for n, start in enumerate(starts):
        await store.create(C, doc("p", f"d{n}", start=start))
    await store.create(C, doc("p", "null", start=None))
    await store.create(C, doc("p", "number", start=20260102))
    await store.create(C, doc("other", "x", start="2026-01-02"))

    both: dict[str, Any] = {"start_at": "2026-01-02", "end_before": "2026-01-04"}
    up = await collect(store, "p", order_by="start", limit=1, **both)
    assert [d["id"] for d in up] == ["d1", "d2", "d3"]
    down = await collect(store, "p", order_by="start", descending=True, limit=2, **both)
    assert [d["id"] for d in down] == ["d3", "d2", "d1"]
    assert [
        d["id"] for d in await collect(store, "p", order_by="start", start_at="2026-01-03")
    ] == [
        "d3",
        "d4",
    ]
    low = await collect(store, "p", order_by="start", descending=True, end_before="2026-01-02")
    assert [d["id"] for d in low] == ["d0"]
    numbers = await collect(store, "p", order_by="start", start_at=0, end_before=10**9)
    assert [d["id"] for d in numbers] == ["number"]

    with pytest.raises(ValueError, match="order_by"):  # a range needs its order field
        await store.query(C, "p", start_at="a")
    with pytest.raises(ValueError, match="both"):  # bounds of one type
        await store.query(C, "p", order_by="start", start_at="a", end_before=3)
    first = await store.query(C, "p", order_by="start", limit=1, **both)
    assert first.continuation is not None
    with pytest.raises(InvalidInput):  # a token of another range
        await store.query(
            C,
            "p",
            order_by="start",
            limit=1,
            start_at="2026-01-01",
            continuation=first.continuation,
        )
