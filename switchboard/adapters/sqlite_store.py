"""The embedded DocumentStore: one SQLite file, with Cosmos DB's semantics, for development.

This is a real, persistent store (docs/architecture.md#two-ways-to-run): restart the process and
the documents are still
there. Every container lives in one table keyed by (container, pk, id); the document is JSON text
and queries read its fields with `json_extract`. Each write gets a fresh random `_etag` and the
`_ts` of the write in epoch seconds, the shape Cosmos DB returns.

Indexes: a query's SQL names its container and JSON paths literally (field names are plain
identifiers, `check_field`), so SQLite can match them against expression indexes. Each query
shape (container, equality fields, order field) gets its partial index, `ix_<container>__...`,
created the first time that shape runs and kept in the file: a page reads its own rows in index
order, never the partition, and never sorts (`tests/adapters/test_sqlite_store.py` checks every
shape with `EXPLAIN QUERY PLAN`, and the services' own queries on the way).

Concurrency: one writer, many readers. Every write runs on one worker thread that owns the write
connection, so the event loop never waits on a lock and writes queue up in order. Every
conditional write is one SQL statement (`INSERT` against the primary key, `UPDATE/DELETE ...
WHERE etag = ?`), so it is atomic also against other processes that open the same file.
Reads (point reads, ReadMany, queries, counts: index lookups of microseconds to a page of a
millisecond) run inline on the caller's thread on a read-only connection: under WAL a reader never
waits for a writer, and that connection's busy timeout is zero, so an inline read cannot stall the
event loop; whenever it cannot run at once (busy file, connection in use by another thread, not
yet opened) the read queues on the worker instead. Writes are autocommit and complete before their
`await` returns, so a read issued after a write sees it.

Time to live, as Cosmos DB: in a container with TTL on (`CONTAINERS` value not None) a document
expires `ttl` seconds after its last write (its own `ttl`, else the container's default; -1 never).
An expired document is gone at once for every operation, and the writer deletes expired rows
from the file at most a minute later (on its next write), so nothing outlives its TTL on disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from switchboard.adapters._store_rules import (
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

T = TypeVar("T")

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    pk TEXT NOT NULL,
    id TEXT NOT NULL,
    etag TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL,
    expires INTEGER,
    PRIMARY KEY (container, pk, id)
) WITHOUT ROWID
"""
# Version 1 had no `expires`: added, and filled from the documents' own `ttl`.
_MIGRATE_TO_2 = "ALTER TABLE documents ADD COLUMN expires INTEGER"
_EXPIRES_INDEX = (
    "CREATE INDEX IF NOT EXISTS documents_expires ON documents (expires) WHERE expires IS NOT NULL"
)

# SQLite's primary result codes that mean "the file cannot serve us right now" (as opposed to a
# bug in our SQL): busy/locked by another process, I/O error, disk full, cannot open, read-only.
_UNAVAILABLE_CODES = frozenset({5, 6, 8, 10, 13, 14})

# How long a write waits for another process's write lock before giving up as unavailable.
_BUSY_TIMEOUT_SECONDS = 5.0
# Live rows only: `expires` is NULL (never) or later than now (the one bound parameter).
_LIVE = "(expires IS NULL OR expires > ?)"
_POINT_READ = (
    "SELECT body, etag, ts FROM documents WHERE container = ? AND pk = ? AND id = ? AND "  # noqa: S608
    + _LIVE
)

# Keys per read_many statement: two bound parameters each, well under SQLite's parameter limit.
_READ_MANY_CHUNK = 400

# How often (seconds) the writer deletes expired rows, on its next write.
_PURGE_INTERVAL = 60.0


def _new_etag() -> str:
    return uuid.uuid4().hex


def _to_json(body: Doc) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; SQLite's json functions would reject the row.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _stored(body: Doc, etag: str, ts: int) -> Doc:
    doc = dict(body)
    doc["_etag"] = etag
    doc["_ts"] = ts
    return doc


def _loaded(body: str, etag: str, ts: int) -> Doc:
    doc: Doc = json.loads(body)
    doc["_etag"] = etag
    doc["_ts"] = ts
    return doc


def _loaded_all(rows: Sequence[tuple[Any, ...]]) -> list[Doc]:
    """Documents from rows of (body, etag, ts, ...): the bodies parsed as one JSON array, one
    decoder call for a page instead of one per document (half the time of a 100-item page).
    Every body is a JSON object this store wrote, so joining them makes a valid array."""
    if not rows:
        return []
    docs: list[Doc] = json.loads("[" + ",".join(row[0] for row in rows) + "]")
    for doc, row in zip(docs, rows, strict=True):
        doc["_etag"] = row[1]
        doc["_ts"] = row[2]
    return docs


def _value(field: str) -> str:
    """The SQL of a top-level field's value, with the path written literally (index-matchable;
    `check_field` proved the name a plain identifier, so no quoting is needed)."""
    return f"json_extract(body, '$.{check_field(field)}')"


def _type(field: str) -> str:
    return f"json_type(body, '$.{check_field(field)}')"


def _expires(container: str, body: Doc, ts: int) -> int | None:
    """When a document written at `ts` expires, as Cosmos DB decides it; None: never.

    TTL off for the container (None): never, whatever the document says. On: the document's own
    positive `ttl`, else the container's positive default; -1 (either) means never.
    """
    default = CONTAINERS[container]
    if default is None:
        return None
    own = body.get("ttl")
    ttl = own if isinstance(own, int) and not isinstance(own, bool) and own != 0 else default
    return ts + ttl if ttl > 0 else None


def _condition(field: str, value: FilterValue) -> tuple[str, list[Any]]:
    """`field == value` with JSON types (True is not 1, "1" is not 1); None: null or absent.

    The value comparison is on `json_extract`, the indexed expression, so it is the index's
    constraint. `json_extract` gives SQL text for a JSON string, integer or real for a number,
    1/0 for true/false and JSON text for an object or array; SQL compares without affinity here.
    So a text value that does not start like an object or array (`{`, `[`) matches strings
    only, exactly, on the index alone; any other value adds a `json_type` check, read from the
    document.
    """
    x, t = _value(field), _type(field)
    if value is None:
        return f"{x} IS NULL", []
    if isinstance(value, bool):
        return f"({x} = ? AND {t} = '{'true' if value else 'false'}')", [int(value)]
    if isinstance(value, int | float):
        return f"({x} = ? AND {t} IN ('integer', 'real'))", [value]
    if value.startswith(("{", "[")):
        return f"({x} = ? AND {t} = 'text')", [value]
    return f"{x} = ?", [value]


def _type_check(field: str, value: RangeValue) -> str:
    t = _type(field)
    return f"{t} = 'text'" if isinstance(value, str) else f"{t} IN ('integer', 'real')"


@dataclass(frozen=True, slots=True)
class _Index:
    """A partial expression index for one query shape: (pk, equality fields, order field, id).

    `id` is named although SQLite appends the primary key to every index of a WITHOUT ROWID
    table: appended, it follows `container`, and the planner then sorts by id in a temporary
    B-tree instead of reading the index in order.
    """

    container: str
    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        return "ix_" + "__".join((self.container, *self.fields))

    @property
    def sql(self) -> str:
        columns = ", ".join(["pk", *(_value(f) for f in self.fields), "id"])
        # The container's name is from CONTAINERS (checked), a plain word.
        return (
            f'CREATE INDEX IF NOT EXISTS "{self.name}" ON documents ({columns}) '
            f"WHERE container = '{self.container}'"
        )

    @property
    def source(self) -> str:
        """The FROM clause that reads it: `INDEXED BY` makes SQLite refuse the statement (an
        error, not a slow scan) if the index ever stops fitting the query. No fields: the
        primary key (container, pk, id) is that index already."""
        if not self.fields:
            return "documents"
        return f'documents INDEXED BY "{self.name}"'


class SqliteStore:
    """A `DocumentStore` in one SQLite file (created with its schema on first use)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = _BUSY_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`busy_timeout`: seconds a write waits for another process's lock on the file.

        `clock`: epoch seconds, for `_ts` and expiry (tests move it).
        """
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._clock = clock
        # One thread owns the connection: sqlite3 connections must not be used concurrently.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._connection: sqlite3.Connection | None = None
        # The inline read connection (see the module docstring), opened by the worker once the
        # schema exists; the lock keeps it to one thread at a time.
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._indexes: set[str] = set()  # names known to exist in the file
        self._purged_at = float("-inf")
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _connect(self) -> sqlite3.Connection:
        """The worker thread's connection, opened (with the schema) on first use."""
        if self._connection is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; each statement is its own atomic transaction.
            connection = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout,
            )
            try:
                self._prepare(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
            self._open_reader()
        return self._connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode, the schema. Retried while another process holds the file: switching the
        journal mode answers SQLITE_BUSY at once, without SQLite's busy handler, when two
        processes open a new file together (seen about once in 6,000 concurrent opens)."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode (not power loss),
                # and saves an fsync per write: the right trade for a development store.
                connection.execute("PRAGMA synchronous=NORMAL")
                self._migrate(connection)
                return
            except sqlite3.OperationalError as error:
                busy = (error.sqlite_errorcode & 0xFF) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)  # on the worker thread, never the event loop

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        """Create the schema, or bring a file of an older version up to this one (in one
        transaction, so two processes opening an old file migrate it once)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'"
            ).fetchone()
            if exists and version < 2:
                connection.execute(_MIGRATE_TO_2)
                for container, default in CONTAINERS.items():
                    if default is None:
                        continue
                    own = "json_extract(body, '$.ttl')"
                    ttl = (
                        f"CASE WHEN json_type(body, '$.ttl') = 'integer' AND {own} != 0 "
                        f"THEN {own} ELSE {default} END"
                    )
                    connection.execute(
                        f"UPDATE documents SET expires = CASE WHEN {ttl} > 0 "  # noqa: S608
                        f"THEN ts + {ttl} END WHERE container = ?",
                        (container,),
                    )
            connection.execute(_SCHEMA)
            connection.execute(_EXPIRES_INDEX)
            connection.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _open_reader(self) -> None:
        """Open the read-only connection for inline reads (after the schema exists)."""
        try:
            reader = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,  # the lock, not the thread, guards it
                timeout=0,  # never wait on the loop thread: a busy read goes to the worker
            )
        except sqlite3.Error:
            return  # reads keep queueing on the worker; nothing is lost but the shortcut
        with self._reader_lock:
            self._reader = reader

    def _read_inline(self, job: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """(True, the job's result) if the read ran here; (False, None) if it must queue on the
        worker (no reader yet, reader in use, or SQLite said busy)."""
        if self._reader is None or not self._reader_lock.acquire(blocking=False):
            return False, None
        try:
            if self._reader is None:  # closed meanwhile
                return False, None
            return True, job(self._reader)
        except sqlite3.OperationalError:
            return False, None  # the worker retries with the busy timeout and maps errors
        finally:
            self._reader_lock.release()

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        try:
            db = self._connect()
            self._purge_if_due(db)
            return job(db)
        except sqlite3.OperationalError as error:
            if (error.sqlite_errorcode & 0xFF) in _UNAVAILABLE_CODES:
                raise DependencyUnavailable("store", retry_after=1) from error
            raise

    def _purge_if_due(self, db: sqlite3.Connection) -> None:
        """Delete expired rows, at most once per _PURGE_INTERVAL (on the writer)."""
        now = self._clock()
        if now - self._purged_at < _PURGE_INTERVAL:
            return
        self._purged_at = now
        db.execute("DELETE FROM documents WHERE expires <= ?", (int(now),))

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("SqliteStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._call, job)

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """A read: inline when it can, else on the worker."""
        if self._closed:
            raise RuntimeError("SqliteStore is closed")
        done, result = self._read_inline(job)
        if done:
            return result  # type: ignore[return-value]  # T itself may include None
        return await self._run(job)

    async def _ensure_index(self, index: _Index) -> None:
        """Create the shape's index once (a write: on the worker), then remember it."""
        if not index.fields or index.name in self._indexes:
            return

        def job(db: sqlite3.Connection) -> None:
            db.execute(index.sql)

        await self._run(job)
        self._indexes.add(index.name)

    def _select(
        self, db: sqlite3.Connection, sql: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """Run one query's SELECT (tests override this to check its plan)."""
        return db.execute(sql, params).fetchall()

    def _live(self, container: str) -> tuple[list[str], list[Any]]:
        """The clause (and parameter) that leaves out expired rows; none where TTL is off (no
        row there has an expiry), so those queries never read a row to check one."""
        if CONTAINERS[container] is None:
            return [], []
        return [_LIVE], [self._now()]

    def _drop_expired(self, db: sqlite3.Connection, container: str, pk: str, id: str) -> None:
        """A write meets an expired row as Cosmos would (gone): remove it first."""
        if CONTAINERS[container] is not None:
            db.execute(
                "DELETE FROM documents WHERE container = ? AND pk = ? AND id = ? AND expires <= ?",
                (container, pk, id, self._now()),
            )

    # -- the port ----------------------------------------------------------------------------

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        check_container(container)
        check_key(pk, id)
        now = self._now()

        def job(db: sqlite3.Connection) -> Doc | None:
            row = db.execute(_POINT_READ, (container, pk, id, now)).fetchone()
            return None if row is None else _loaded(*row)

        return await self._read(job)

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        """The documents found, in the order of `keys` (each once, even if asked twice)."""
        check_container(container)
        unique = list(dict.fromkeys((pk, id) for pk, id in keys))
        for pk, id in unique:
            check_key(pk, id)
        if not unique:
            return []
        now = self._now()

        def job(db: sqlite3.Connection) -> list[Doc]:
            found: dict[tuple[str, str], Doc] = {}
            for start in range(0, len(unique), _READ_MANY_CHUNK):
                chunk = unique[start : start + _READ_MANY_CHUNK]
                values = ",".join("(?, ?)" for _ in chunk)
                rows = db.execute(
                    f"WITH wanted(pk, id) AS (VALUES {values}) "  # noqa: S608 (placeholders only)
                    "SELECT d.pk, d.id, d.body, d.etag, d.ts FROM wanted "
                    "JOIN documents d ON d.container = ? AND d.pk = wanted.pk "
                    "AND d.id = wanted.id AND (d.expires IS NULL OR d.expires > ?)",
                    [*(part for key in chunk for part in key), container, now],
                ).fetchall()
                for (pk, id, *_), loaded in zip(
                    rows, _loaded_all([row[2:] for row in rows]), strict=True
                ):
                    found[(pk, id)] = loaded
            return [found[key] for key in unique if key in found]

        return await self._read(job)

    async def create(self, container: str, doc: Doc) -> Doc:
        check_container(container)
        pk, id, body = document_body(doc)
        text = _to_json(body)

        def job(db: sqlite3.Connection) -> Doc:
            etag, ts = _new_etag(), self._now()
            self._drop_expired(db, container, pk, id)
            try:
                db.execute(
                    "INSERT INTO documents (container, pk, id, etag, ts, body, expires) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (container, pk, id, etag, ts, text, _expires(container, body, ts)),
                )
            except sqlite3.IntegrityError as error:
                raise DocumentExists(f"{container}/{pk}/{id} already exists") from error
            return _stored(body, etag, ts)

        return await self._run(job)

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        check_container(container)
        pk, id, body = document_body(doc)
        text = _to_json(body)

        def job(db: sqlite3.Connection) -> Doc:
            new_etag, ts = _new_etag(), self._now()
            self._drop_expired(db, container, pk, id)
            updated = db.execute(
                "UPDATE documents SET etag = ?, ts = ?, body = ?, expires = ? "
                "WHERE container = ? AND pk = ? AND id = ? AND etag = ?",
                (new_etag, ts, text, _expires(container, body, ts), container, pk, id, etag),
            ).rowcount
            if updated == 0:
                if self._exists(db, container, pk, id):
                    raise PreconditionFailed(f"{container}/{pk}/{id} changed since it was read")
                raise DocumentNotFound(f"{container}/{pk}/{id} does not exist")
            return _stored(body, new_etag, ts)

        return await self._run(job)

    async def upsert(self, container: str, doc: Doc) -> Doc:
        check_container(container)
        pk, id, body = document_body(doc)
        text = _to_json(body)

        def job(db: sqlite3.Connection) -> Doc:
            etag, ts = _new_etag(), self._now()
            db.execute(
                "INSERT INTO documents (container, pk, id, etag, ts, body, expires) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (container, pk, id) DO UPDATE SET "
                "etag = excluded.etag, ts = excluded.ts, body = excluded.body, "
                "expires = excluded.expires",
                (container, pk, id, etag, ts, text, _expires(container, body, ts)),
            )
            return _stored(body, etag, ts)

        return await self._run(job)

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        check_container(container)
        check_key(pk, id)

        def job(db: sqlite3.Connection) -> bool:
            self._drop_expired(db, container, pk, id)
            if etag is None:
                return bool(
                    db.execute(
                        "DELETE FROM documents WHERE container = ? AND pk = ? AND id = ?",
                        (container, pk, id),
                    ).rowcount
                )
            deleted = db.execute(
                "DELETE FROM documents WHERE container = ? AND pk = ? AND id = ? AND etag = ?",
                (container, pk, id, etag),
            ).rowcount
            if deleted == 0 and self._exists(db, container, pk, id):
                raise PreconditionFailed(f"{container}/{pk}/{id} changed since it was read")
            return bool(deleted)

        return await self._run(job)

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
        """One page of a partition's documents, ordered by `order_by` (then by id) or by id.

        A `where` value of None matches a field that is null or absent, as in Cosmos DB where the
        adapter asks `NOT IS_DEFINED(c.f) OR IS_NULL(c.f)`. Values compare with their JSON type:
        `True` does not match `1`, `"1"` does not match `1`.

        Paging is by key (the last page's sort value and id), so documents added or removed
        between pages neither repeat nor skip the ones that stayed. The statement reads the
        shape's index in order (see the module docstring); a page that continues past the
        documents without the sort field (they sort first, as SQLite's NULL) is two statements.
        """
        check_container(container)
        check_key(pk, "-")  # only pk's type matters here
        filters = check_where(where)
        check_limit(limit)
        bounded = check_range(order_by, start_at, end_before)
        eq_fields = tuple(sorted({field for field, _ in filters}))
        index = _Index(container, eq_fields + ((order_by,) if order_by is not None else ()))

        # The container is written literally too: the partial indexes name it.
        live, live_params = self._live(container)
        clauses = [f"container = '{container}'", "pk = ?", *live]
        params: list[Any] = [pk, *live_params]
        for field, value in filters:
            condition, values = _condition(field, value)
            clauses.append(condition)
            params += values
        sort = _value(order_by) if order_by is not None else None
        if order_by is not None and start_at is not None:
            clauses.append(f"{sort} >= ? AND {_type_check(order_by, start_at)}")
            params.append(start_at)
        if order_by is not None and end_before is not None:
            clauses.append(f"{sort} < ? AND {_type_check(order_by, end_before)}")
            params.append(end_before)

        # The query's shape goes into the token so a token cannot continue a different query.
        shape: list[Any] = [order_by, descending]
        if bounded:
            shape += [start_at, end_before]
        # Each segment: extra conditions, their parameters, and whether it sorts by id alone.
        segments: list[tuple[str | None, list[Any], bool]]
        if continuation is None:
            segments = [(None, [], sort is None)]
        else:
            state = decode_continuation(continuation)
            if not (isinstance(state, dict) and state.get("s") == shape and "i" in state):
                raise InvalidInput("The continuation token is not valid.", field="continuation")
            after_id, after_key = state["i"], state.get("k")
            if not isinstance(after_id, str) or not isinstance(after_key, str | int | float | None):
                raise InvalidInput("The continuation token is not valid.", field="continuation")
            segments = _after(sort, after_key, after_id, descending, bounded)

        direction = "DESC" if descending else "ASC"
        # Names in the text are checked identifiers (`_value`, `_Index`); values are bound.
        select = f"SELECT body, etag, ts, id, {sort or 'NULL'} FROM {index.source}"  # noqa: S608
        base = " AND ".join(clauses)
        statements: list[tuple[str, list[Any]]] = []
        for extra, extra_params, by_id in segments:
            where_sql = base if extra is None else f"{base} AND {extra}"
            order = (
                f"ORDER BY id {direction}"
                if by_id
                else f"ORDER BY {sort} {direction}, id {direction}"
            )
            statements.append(
                (f"{select} WHERE {where_sql} {order} LIMIT ?", [*params, *extra_params])
            )

        await self._ensure_index(index)

        def job(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            # One row more than the page tells whether another page follows.
            rows: list[tuple[Any, ...]] = []
            for sql, values in statements:
                rows += self._select(db, sql, [*values, limit + 1 - len(rows)])
                if len(rows) > limit:
                    break
            return rows

        rows = await self._read(job)
        items = _loaded_all(rows[:limit])
        next_token = None
        if len(rows) > limit:
            _, _, _, last_id, last_key = rows[limit - 1]
            state = {"s": shape, "i": last_id}
            if sort is not None:
                state["k"] = last_key
            next_token = encode_continuation(state)
        return Page(items=items, continuation=next_token)

    async def count(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, FilterValue] | None = None,
        where_not: Mapping[str, FilterValue] | None = None,
    ) -> int:
        """How many live documents of the partition match `where` and none of `where_not`.

        Counted on the shape's index: with one `where_not` field, as count(where) minus
        count(where and that field's value), two index-only counts (an exclusion evaluated row
        by row would read every document to check it); with more, row by row.
        """
        check_container(container)
        check_key(pk, "-")
        filters = check_where(where)
        exclusions = check_where(where_not)
        where_fields = tuple(sorted({field for field, _ in filters}))
        excluded_fields = tuple(sorted({field for field, _ in exclusions} - set(where_fields)))
        index = _Index(container, where_fields + excluded_fields)
        live, live_params = self._live(container)
        clauses = [f"container = '{container}'", "pk = ?", *live]
        params: list[Any] = [pk, *live_params]
        for field, value in filters:
            condition, values = _condition(field, value)
            clauses.append(condition)
            params += values
        statements: list[tuple[str, list[Any]]] = []
        base = f"SELECT count(*) FROM {index.source} WHERE "  # noqa: S608 (checked names)
        if len(exclusions) == 1:
            condition, values = _condition(*exclusions[0])
            statements.append((base + " AND ".join(clauses), params))
            statements.append((base + " AND ".join([*clauses, condition]), [*params, *values]))
        else:
            for field, value in exclusions:
                condition, values = _condition(field, value)
                # IS NOT TRUE: a comparison with an absent field (NULL) is not a match.
                clauses.append(f"({condition}) IS NOT TRUE")
                params += values
            statements.append((base + " AND ".join(clauses), params))
        await self._ensure_index(index)

        def job(db: sqlite3.Connection) -> int:
            # Both counts in one read transaction: one snapshot, whatever writes in between.
            db.execute("BEGIN")
            try:
                counts = [int(self._select(db, sql, values)[0][0]) for sql, values in statements]
            finally:
                db.execute("COMMIT")
            return counts[0] - sum(counts[1:])

        return await self._read(job)

    async def ping(self) -> None:
        def job(db: sqlite3.Connection) -> None:
            db.execute("SELECT count(*) FROM documents WHERE 0").fetchone()

        try:
            await self._run(job)
        except sqlite3.Error as error:
            raise DependencyUnavailable("store", retry_after=1) from error

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        def job() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._worker, job)
        self._worker.shutdown(wait=True)

    # -- helpers -----------------------------------------------------------------------------

    def _exists(self, db: sqlite3.Connection, container: str, pk: str, id: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM documents WHERE container = ? AND pk = ? AND id = ? AND "  # noqa: S608
            + _LIVE,
            (container, pk, id, self._now()),
        ).fetchone()
        return row is not None


# Keyset paging on (sort key, id). SQLite sorts NULL (a missing or null field) before every
# value, so ascending pages run NULLs first and descending pages run them last. Each case is
# one or two index range scans (never an OR across ranges, which would leave the index).
def _after(
    sort: str | None, after_key: Any, after_id: str, descending: bool, bounded: bool
) -> list[tuple[str | None, list[Any], bool]]:
    """The segments (condition, parameters, ordered by id alone) of the rows after
    (after_key, after_id) in sort order, to be read one after the other."""
    beyond = "<" if descending else ">"
    if sort is None:
        return [(f"id {beyond} ?", [after_id], True)]
    if after_key is None:
        if descending:  # the NULLs come last: only NULLs remain
            return [(f"{sort} IS NULL AND id < ?", [after_id], True)]
        return [
            (f"{sort} IS NULL AND id > ?", [after_id], True),
            (f"{sort} IS NOT NULL", [], False),
        ]
    # `sort >= key` is the index range; the rest only drops the ties already served (a
    # row-value `(sort, id) > (key, id)` would read better, but SQLite 3.40 does not range-scan
    # an expression index with it and walks the partition from its start).
    after = (
        f"{sort} {beyond}= ? AND ({sort} {beyond} ? OR id {beyond} ?)",
        [after_key, after_key, after_id],
        False,
    )
    if descending and not bounded:  # then the NULLs (a range excludes them)
        return [after, (f"{sort} IS NULL", [], True)]
    return [after]
