"""Run a generator in a thread, or a function over items in several threads, a few items ahead
of the consumer.

Imports parse and validate in the thread while the caller writes to the database; exports read
from the database in threads while the caller sends what is ready. The threads mostly wait on I/O
(which releases the GIL), so they overlap even on CPython.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
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


def map_ahead(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    depth: int = 2,
    around: Callable[[], AbstractContextManager] = nullcontext,
    name: str = "map-ahead",
) -> Iterator[R]:
    """Yield `function(item)` for each of `items`, in order, computed by `workers` threads.

    Item i goes to thread i % workers, and at most `workers * depth` results wait ahead of the
    consumer. Each thread runs its items inside one `around()` (its own database transaction,
    say). The first exception, in `function` or in entering `around`, is re-raised in the
    consumer; when the consumer stops, every thread finishes its current item and leaves.
    """
    inputs: list[Queue] = [Queue() for _ in range(workers)]
    outputs: list[Queue] = [Queue() for _ in range(workers)]

    def work(index: int) -> None:
        try:
            with around():
                while (item := inputs[index].get()) is not _DONE:
                    outputs[index].put((function(item), None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            outputs[index].put((_DONE, exc))

    threads = [
        threading.Thread(target=work, args=(i,), name=f"{name}-{i}", daemon=True)
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    waiting: deque[int] = deque()  # the thread of each submitted item, in order
    source, submitted = iter(items), 0
    try:
        while True:
            while len(waiting) < workers * depth:
                item = next(source, _DONE)
                if item is _DONE:
                    break
                inputs[submitted % workers].put(item)
                waiting.append(submitted % workers)
                submitted += 1
            if not waiting:
                return
            result, exc = outputs[waiting.popleft()].get()
            if exc is not None:
                raise exc
            yield result
    finally:
        for queue in inputs:
            queue.put(_DONE)
        for thread in threads:
            thread.join()
