import threading

import pytest

from annotator.dataio.readahead import read_ahead


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
