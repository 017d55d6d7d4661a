"""Reading an export in threads, all in one read-only snapshot of the export's start.

Commands and API views export outside any transaction: threads then read the batches on their
own connections while the caller sends what is ready, and everything committed meanwhile stays
out of the export. Inside a transaction (a caller's atomic block, a test) the caller's connection
must do the reading, so the batches are read inline.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from queue import Queue
from typing import TypeVar

from django.db import connection, transaction

from annotator.dataio.readahead import read_ahead

T = TypeVar("T")
_END = object()


def read_ahead_in_snapshot(batches: Iterator[T]) -> Iterator[T]:
    """`batches`, read by a thread on its own connection in one read-only snapshot, while this
    thread turns the current batch into JSON; inline inside a transaction."""
    if connection.in_atomic_block:
        return batches
    return read_ahead(_in_snapshot(batches), name="export-reader")


def _in_snapshot(batches: Iterator[T]) -> Iterator[T]:
    try:
        if connection.vendor == "sqlite":
            # In WAL mode a deferred transaction reads one snapshot and leaves writers alone;
            # atomic() begins IMMEDIATE here (settings), which would lock out every write
            # (an annotator's submit) for the whole export.
            with connection.cursor() as cursor:
                cursor.execute("BEGIN DEFERRED")
                try:
                    yield from batches
                finally:
                    cursor.execute("COMMIT")
            return
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield from batches
    finally:
        connection.close()  # this thread's own connection


@contextmanager
def shared_snapshot(read: Callable[[], Iterator[T]]) -> Iterator[tuple[str, Iterator[T]]]:
    """(id of a read-only PostgreSQL snapshot that other connections can join, what `read()`
    yields in it, as it comes). The transaction that exports the snapshot must stay open while
    they join: a thread of its own holds it, on its own connection, until the block ends.
    (Holding it on the caller's connection would put the caller's own writes into it.)"""
    received: Queue = Queue()
    done = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                received.put((cursor.fetchone()[0], None))
                for item in read():
                    if done.is_set():
                        break
                    received.put((item, None))
                received.put((_END, None))
                done.wait()
        except BaseException as exc:  # handed to the caller, which re-raises it
            received.put((_END, exc))
        finally:
            connection.close()  # this thread's own connection

    def items() -> Iterator:
        while True:
            item, exc = received.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item

    thread = threading.Thread(target=hold, name="export-snapshot", daemon=True)
    thread.start()
    stream = items()
    try:
        yield next(stream), stream
    finally:
        done.set()
        thread.join()


@contextmanager
def in_snapshot_of(snapshot: str) -> Iterator[None]:
    """A read-only transaction on this thread's own connection that sees `snapshot`."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            yield
    finally:
        connection.close()
