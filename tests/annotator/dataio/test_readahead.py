import threading
from contextlib import contextmanager

import pytest

from annotator.dataio.readahead import map_ahead, read_ahead


def test_yields_everything_in_order():
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_producer_reaches_the_consumer():
    def broken():
        yield 1
        raise ValueError("bad line")

    consumed = []
    with pytest.raises(ValueError, match="bad line"):
        for item in read_ahead(broken()):
            consumed.append(item)
    assert consumed == [1]


def test_stopping_early_closes_the_producer_in_its_own_thread():
    closed_in = []

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed_in.append(threading.current_thread().name)

    reader = read_ahead(endless(), depth=2, name="producer")
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    assert closed_in == ["producer"]


def test_map_ahead_keeps_the_order_of_the_items_across_threads():
    import random
    import time

    def slow_square(n):
        time.sleep(random.random() / 500)  # threads finish out of order
        return n * n, threading.current_thread().name

    results = list(map_ahead(slow_square, range(50), workers=3, depth=2, name="sq"))

    assert [value for value, _ in results] == [n * n for n in range(50)]
    assert {name for _, name in results} == {"sq-0", "sq-1", "sq-2"}


def test_map_ahead_enters_around_once_per_thread_and_leaves_it():
    entered, left = [], []

    @contextmanager
    def around():
        entered.append(threading.current_thread().name)
        yield
        left.append(threading.current_thread().name)

    assert list(map_ahead(str, range(7), workers=2, around=around, name="w")) == list("0123456")
    assert sorted(entered) == sorted(left) == ["w-0", "w-1"]


def test_an_error_in_map_ahead_reaches_the_consumer_in_order():
    def fails_on_5(n):
        if n == 5:
            raise ValueError("bad batch 5")
        return n

    consumed = []
    with pytest.raises(ValueError, match="bad batch 5"):
        for item in map_ahead(fails_on_5, range(20), workers=2):
            consumed.append(item)
    assert consumed == [0, 1, 2, 3, 4]


def test_an_error_entering_around_reaches_the_consumer():
    @contextmanager
    def refuses():
        raise RuntimeError("no connection")
        yield

    with pytest.raises(RuntimeError, match="no connection"):
        list(map_ahead(str, range(3), workers=2, around=refuses))


def test_stopping_map_ahead_early_stops_its_threads_and_the_items():
    pulled = []

    def items():
        for n in range(1000):
            pulled.append(n)
            yield n

    mapped = map_ahead(str, items(), workers=2, depth=2, name="early")
    assert [next(mapped) for _ in range(3)] == ["0", "1", "2"]
    mapped.close()

    assert len(pulled) <= 3 + 2 * 2  # what was consumed and at most workers * depth ahead
    assert not [t for t in threading.enumerate() if t.name.startswith("early-")]
