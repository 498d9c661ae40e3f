"""The embedded DocumentStore: one SQLite file, with Cosmos DB's semantics, for development.

This is a real, persistent store (docs/architecture.md#two-ways-to-run): restart the process and
the documents are still
there. Every container lives in one table keyed by (container, pk, id); the document is JSON text
and queries read its fields with `json_extract`. Each write gets a fresh random `_etag` and the
`_ts` of the write in epoch seconds, the shape Cosmos DB returns.

Concurrency: all SQLite work runs on one worker thread that owns the connection, so the event loop
never waits on disk and calls from many coroutines queue up in order instead of sharing a
connection. Every conditional write is one SQL statement (`INSERT` against the primary key,
`UPDATE/DELETE ... WHERE etag = ?`), so it is atomic also against other processes that open the
same file; WAL mode lets readers in those processes carry on while one writes.

Point reads (`read`, one primary-key lookup of a few microseconds) skip the thread hop: they
run inline on the caller's thread on a second, read-only connection. Under WAL a reader never
waits for a writer, and that connection's busy timeout is zero, so an inline read cannot stall
the event loop; whenever it cannot run at once (busy file, connection in use by another thread,
not yet opened) the read queues on the worker as before. Writes are autocommit and complete
before their `await` returns, so a read issued after a write still sees it.
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
from pathlib import Path
from typing import Any, TypeVar

from switchboard.adapters._store_rules import (
    FilterValue,
    check_container,
    check_field,
    check_key,
    check_limit,
    check_where,
    decode_continuation,
    document_body,
    encode_continuation,
)
from switchboard.errors import DependencyUnavailable, InvalidInput
from switchboard.ports import Doc, DocumentExists, DocumentNotFound, Page, PreconditionFailed

T = TypeVar("T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    pk TEXT NOT NULL,
    id TEXT NOT NULL,
    etag TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (container, pk, id)
) WITHOUT ROWID
"""

# SQLite's primary result codes that mean "the file cannot serve us right now" (as opposed to a
# bug in our SQL): busy/locked by another process, I/O error, disk full, cannot open, read-only.
_UNAVAILABLE_CODES = frozenset({5, 6, 8, 10, 13, 14})

# How long a write waits for another process's write lock before giving up as unavailable.
_BUSY_TIMEOUT_SECONDS = 5.0
_POINT_READ = "SELECT body, etag, ts FROM documents WHERE container = ? AND pk = ? AND id = ?"

# Keys per read_many statement: two bound parameters each, well under SQLite's parameter limit.
_READ_MANY_CHUNK = 400


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


def _path(field: str) -> str:
    return "$." + check_field(field)


class SqliteStore:
    """A `DocumentStore` in one SQLite file (created with its schema on first use)."""

    def __init__(self, path: Path, *, busy_timeout: float = _BUSY_TIMEOUT_SECONDS) -> None:
        """`busy_timeout`: seconds a write waits for another process's lock on the file."""
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        # One thread owns the connection: sqlite3 connections must not be used concurrently.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._connection: sqlite3.Connection | None = None
        # The inline point-read connection (see the module docstring), opened by the worker
        # once the schema exists; the lock keeps it to one thread at a time.
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------

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
                connection.execute(_SCHEMA)
                connection.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                return
            except sqlite3.OperationalError as error:
                busy = (error.sqlite_errorcode & 0xFF) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)  # on the worker thread, never the event loop

    def _open_reader(self) -> None:
        """Open the read-only connection for inline point reads (after the schema exists)."""
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

    def _read_inline(self, container: str, pk: str, id: str) -> tuple[bool, Doc | None]:
        """(True, the document or None) if the point read ran here; (False, None) if it must
        queue on the worker (no reader yet, reader in use, or SQLite said busy)."""
        if self._reader is None or not self._reader_lock.acquire(blocking=False):
            return False, None
        try:
            if self._reader is None:  # closed meanwhile
                return False, None
            row = self._reader.execute(_POINT_READ, (container, pk, id)).fetchone()
        except sqlite3.OperationalError:
            return False, None  # the worker retries with the busy timeout and maps errors
        finally:
            self._reader_lock.release()
        return True, None if row is None else _loaded(*row)

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return job(self._connect())
        except sqlite3.OperationalError as error:
            if (error.sqlite_errorcode & 0xFF) in _UNAVAILABLE_CODES:
                raise DependencyUnavailable("store", retry_after=1) from error
            raise

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("SqliteStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._call, job)

    # -- the port ----------------------------------------------------------------------------

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        check_container(container)
        check_key(pk, id)

        if self._closed:
            raise RuntimeError("SqliteStore is closed")
        done, found = self._read_inline(container, pk, id)
        if done:
            return found

        def job(db: sqlite3.Connection) -> Doc | None:
            row = db.execute(_POINT_READ, (container, pk, id)).fetchone()
            return None if row is None else _loaded(*row)

        return await self._run(job)

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        """The documents found, in the order of `keys` (each once, even if asked twice)."""
        check_container(container)
        unique = list(dict.fromkeys((pk, id) for pk, id in keys))
        for pk, id in unique:
            check_key(pk, id)
        if not unique:
            return []

        def job(db: sqlite3.Connection) -> list[Doc]:
            found: dict[tuple[str, str], Doc] = {}
            for start in range(0, len(unique), _READ_MANY_CHUNK):
                chunk = unique[start : start + _READ_MANY_CHUNK]
                values = ",".join("(?, ?)" for _ in chunk)
                rows = db.execute(
                    f"WITH wanted(pk, id) AS (VALUES {values}) "  # noqa: S608 (placeholders only)
                    "SELECT d.pk, d.id, d.body, d.etag, d.ts FROM wanted "
                    "JOIN documents d ON d.container = ? AND d.pk = wanted.pk "
                    "AND d.id = wanted.id",
                    [*(part for key in chunk for part in key), container],
                ).fetchall()
                for pk, id, body, etag, ts in rows:
                    found[(pk, id)] = _loaded(body, etag, ts)
            return [found[key] for key in unique if key in found]

        return await self._run(job)

    async def create(self, container: str, doc: Doc) -> Doc:
        check_container(container)
        pk, id, body = document_body(doc)
        text = _to_json(body)

        def job(db: sqlite3.Connection) -> Doc:
            etag, ts = _new_etag(), int(time.time())
            try:
                db.execute(
                    "INSERT INTO documents (container, pk, id, etag, ts, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (container, pk, id, etag, ts, text),
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
            new_etag, ts = _new_etag(), int(time.time())
            updated = db.execute(
                "UPDATE documents SET etag = ?, ts = ?, body = ? "
                "WHERE container = ? AND pk = ? AND id = ? AND etag = ?",
                (new_etag, ts, text, container, pk, id, etag),
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
            etag, ts = _new_etag(), int(time.time())
            db.execute(
                "INSERT INTO documents (container, pk, id, etag, ts, body) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (container, pk, id) DO UPDATE SET "
                "etag = excluded.etag, ts = excluded.ts, body = excluded.body",
                (container, pk, id, etag, ts, text),
            )
            return _stored(body, etag, ts)

        return await self._run(job)

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        check_container(container)
        check_key(pk, id)

        def job(db: sqlite3.Connection) -> bool:
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
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """One page of a partition's documents, ordered by `order_by` (then by id) or by id.

        A `where` value of None matches a field that is null or absent, as in Cosmos DB where the
        adapter asks `NOT IS_DEFINED(c.f) OR IS_NULL(c.f)`. Values compare with their JSON type:
        `True` does not match `1`, `"1"` does not match `1`.

        Paging is by key (the last page's sort value and id), so documents added or removed
        between pages neither repeat nor skip the ones that stayed.
        """
        check_container(container)
        check_key(pk, "-")  # only pk's type matters here
        filters = check_where(where)
        check_limit(limit)
        sort_path = _path(order_by) if order_by is not None else None

        clauses = ["container = ?", "pk = ?"]
        params: list[Any] = [container, pk]
        for field, value in filters:
            path = _path(field)
            if value is None:
                clauses.append("json_extract(body, ?) IS NULL")
                params.append(path)
            elif isinstance(value, bool):
                clauses.append("json_type(body, ?) = ?")
                params += [path, "true" if value else "false"]
            elif isinstance(value, int | float):
                clauses.append(
                    "json_type(body, ?) IN ('integer', 'real') AND json_extract(body, ?) = ?"
                )
                params += [path, path, value]
            else:
                clauses.append("json_type(body, ?) = 'text' AND json_extract(body, ?) = ?")
                params += [path, path, value]

        # The query's shape goes into the token so a token cannot continue a different ordering.
        shape = [order_by, descending]
        if continuation is not None:
            state = decode_continuation(continuation)
            if not (isinstance(state, dict) and state.get("s") == shape and "i" in state):
                raise InvalidInput("The continuation token is not valid.", field="continuation")
            after_id, after_key = state["i"], state.get("k")
            if not isinstance(after_id, str) or not isinstance(after_key, str | int | float | None):
                raise InvalidInput("The continuation token is not valid.", field="continuation")
            if sort_path is None:
                clauses.append("id < ?" if descending else "id > ?")
                params.append(after_id)
            else:
                condition, condition_params = _after(sort_path, after_key, after_id, descending)
                clauses.append(condition)
                params += condition_params

        direction = "DESC" if descending else "ASC"
        if sort_path is None:
            select = "SELECT body, etag, ts, id, NULL FROM documents"
            order = f"ORDER BY id {direction}"
        else:
            select = "SELECT body, etag, ts, id, json_extract(body, ?) FROM documents"
            params.insert(0, sort_path)
            order = f"ORDER BY json_extract(body, ?) {direction}, id {direction}"
            params.append(sort_path)
        # One row more than the page tells whether another page follows.
        sql = f"{select} WHERE {' AND '.join(clauses)} {order} LIMIT ?"
        params.append(limit + 1)

        def job(db: sqlite3.Connection) -> list[tuple[str, str, int, str, Any]]:
            return db.execute(sql, params).fetchall()

        rows = await self._run(job)
        items = [_loaded(body, etag, ts) for body, etag, ts, _, _ in rows[:limit]]
        next_token = None
        if len(rows) > limit:
            _, _, _, last_id, last_key = rows[limit - 1]
            state = {"s": shape, "i": last_id}
            if sort_path is not None:
                state["k"] = last_key
            next_token = encode_continuation(state)
        return Page(items=items, continuation=next_token)

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

    @staticmethod
    def _exists(db: sqlite3.Connection, container: str, pk: str, id: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM documents WHERE container = ? AND pk = ? AND id = ?",
            (container, pk, id),
        ).fetchone()
        return row is not None


# Keyset paging on (sort key, id). SQLite sorts NULL (a missing or null field) before every
# value, so ascending pages run NULLs first and descending pages run them last.
def _after(path: str, after_key: Any, after_id: str, descending: bool) -> tuple[str, list[Any]]:
    """The condition (and its parameters) for rows after (after_key, after_id) in sort order."""
    key = "json_extract(body, ?)"
    if after_key is None:
        if descending:
            return f"({key} IS NULL AND id < ?)", [path, after_id]
        return f"(({key} IS NULL AND id > ?) OR {key} IS NOT NULL)", [path, after_id, path]
    beyond = "<" if descending else ">"
    condition = f"{key} {beyond} ? OR ({key} = ? AND id {beyond} ?)"
    params = [path, after_key, path, after_key, after_id]
    if descending:
        condition += f" OR {key} IS NULL"
        params.append(path)
    return f"({condition})", params
