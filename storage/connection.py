"""The database connection: URL handling, SQLite set-up, read and write transactions, errors.

SQLite runs in WAL mode with a busy timeout and foreign keys on; write transactions start
with BEGIN IMMEDIATE so concurrent writers queue on the busy timeout instead of failing
with "database is locked" when a read transaction tries to upgrade. Every database failure
leaves here as a `StoreError` that names the file or URL (never the password in it).
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from platformdirs import user_data_dir
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DataError, IntegrityError, OperationalError

SQLITE_MAGIC = b"SQLite format 3\x00"
MMAP_BYTES = 4 << 30  # SQLite caps it where the address space is smaller


class StoreError(RuntimeError):
    """A database that cannot be used; the message names the file or URL."""


def default_url() -> str:
    env = os.environ.get("ROUTER_STUDIO_DB")
    if env:
        return as_url(env)
    d = Path(user_data_dir("router-r1-studio"))
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'traces.sqlite'}"


def as_url(db: str | None) -> str:
    """`--db` accepts a SQLAlchemy URL or a plain file path; anything else is a StoreError."""
    if db is None or not str(db).strip():
        return default_url()
    db = str(db).strip()
    if "\x00" in db:
        raise StoreError("--db: the path or URL contains a NUL character")
    if "://" not in db:
        if db in (":", ":memory:") or db.endswith(("/", os.sep)):
            raise StoreError(f"--db: '{db}' is not a database file path (give a file such as traces.sqlite)")
        return f"sqlite:///{Path(db).expanduser().resolve()}"
    try:
        url = make_url(db)
    except ArgumentError:
        raise StoreError(f"--db: '{redact(db)}' is not a database URL (e.g. sqlite:///traces.sqlite or "
                         "postgresql+psycopg://user@host/db)") from None
    if url.get_backend_name() == "sqlite" and not url.database:
        raise StoreError(f"--db: '{redact(db)}' names no database file (e.g. sqlite:///traces.sqlite)")
    return db


def redact(url: str) -> str:
    """A URL with any password replaced, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — not a URL at all: show only its scheme
        return url.split("://", 1)[0] + "://…" if "://" in url else url


def short(e: BaseException) -> str:
    """The first line of a database error, without the SQL statement SQLAlchemy appends."""
    orig = getattr(e, "orig", None)
    return str(orig or e).splitlines()[0][:200]


class Database:
    """One SQLAlchemy engine with the store's connection rules; `where` is what messages show."""

    def __init__(self, url: str | None) -> None:
        self.url = as_url(url)
        self.where = redact(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.read_only = False
        if self.is_sqlite:
            self._check_sqlite_file()
            if self.read_only:
                self.engine = self._read_only_engine()
            else:
                self.engine = create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False},
                                            pool_size=8, max_overflow=8)
                event.listen(self.engine, "connect", self._sqlite_connect)
            event.listen(self.engine, "begin", self._sqlite_begin)
        else:
            try:
                self.engine = create_engine(self.url, pool_pre_ping=True)
            except (ArgumentError, ImportError) as e:
                raise StoreError(f"{self.where}: cannot use this database URL ({short(e)})") from None
            except Exception as e:  # noqa: BLE001 — an unknown dialect raises NoSuchModuleError, etc.
                raise StoreError(f"{self.where}: cannot use this database URL ({type(e).__name__}: {short(e)})") \
                    from None

    @property
    def path(self) -> str:
        return self.url.split(":///", 1)[1] if ":///" in self.url else ""

    def _check_sqlite_file(self) -> None:
        path = self.path
        if not path or path == ":memory:":
            return
        p = Path(path)
        self.where = str(p)
        try:
            present = p.exists()
            if present and not p.is_file():
                raise StoreError(f"{p}: not a regular file (a folder or a device cannot be a database)")
            if present:
                with open(p, "rb") as f:
                    head = f.read(16)
        except OSError as e:
            raise StoreError(f"{p}: cannot read the database ({e.strerror or e})") from None
        if present:
            if head and head != SQLITE_MAGIC:
                raise StoreError(f"{p}: not a SQLite database (corrupt, or another kind of file)")
            if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK):  # also sees chattr +i
                self.read_only = True  # opened for reading; any write names the file
        elif not p.parent.exists():
            raise StoreError(f"{p}: folder {p.parent} does not exist")
        elif not os.access(p.parent, os.W_OK):
            raise StoreError(f"{p}: cannot create the database, folder {p.parent} is read-only")

    @staticmethod
    def _sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA cache_size = -32768")  # 32 MiB, on demand: the list index of 100k sessions stays cached
        # reads map the file instead of copying each page in: a page of sessions looked up by key (a label, text
        # matches) reads rows all over a large store (address space only; the OS caches the file once)
        cur.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        cur.close()

    def _read_only_engine(self) -> Any:
        """A read-only connection (mode=ro); `immutable=1` where SQLite cannot even create its
        shared-memory file next to a WAL database (a read-only folder)."""
        from urllib.parse import quote
        path = quote(str(Path(self.path).resolve()))
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            eng = create_engine(f"sqlite:///file:{path}?{flags}&uri=true",
                                connect_args={"timeout": 30, "check_same_thread": False}, pool_size=8, max_overflow=8)
            event.listen(eng, "connect", self._sqlite_connect_read_only)
            try:
                with eng.connect() as c:
                    c.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
                return eng
            except (OperationalError, DatabaseError):
                eng.dispose()
        raise StoreError(f"{self.where}: the database is read-only and cannot be opened for reading either")

    @staticmethod
    def _sqlite_connect_read_only(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA query_only = ON")
        cur.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        cur.close()

    @staticmethod
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); database failures name the file."""
        if self.read_only:
            raise StoreError(f"{self.where}: the database file (or its folder) is read-only; "
                             "it was opened for reading, and this needs to write it")
        try:
            with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                yield conn
        except (IntegrityError, DataError):
            raise  # bad data: the caller decides (import reports the line)
        except (OperationalError, DatabaseError) as e:
            raise StoreError(f"{self.where}: write failed ({short(e)})") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction; database failures name the file."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, DatabaseError) as e:
            raise StoreError(f"{self.where}: read failed ({short(e)})") from None

    def dispose(self) -> None:
        self.engine.dispose()
