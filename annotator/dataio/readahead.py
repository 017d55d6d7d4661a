"""Run a generator in a thread, a few items ahead of its consumer.

Imports parse and validate in the thread while the caller writes to the database; exports read
from the database in the thread while the caller builds JSON. The producer mostly waits on I/O
(which releases the GIL), so the two overlap even on CPython.
"""

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(iterator: Iterator[T], *, depth: int = 2, name: str = "read-ahead") -> Iterator[T]:
    """Yield what `iterator` yields, produced in a thread up to `depth` items ahead.

    An exception in the producer is re-raised in the consumer. If the consumer stops early, the
    producer stops too and the generator is closed in its own thread (so its `finally` runs there).
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put((_DONE, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, exc = queue.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                queue.get_nowait()
            except Empty:
                thread.join(timeout=0.1)
