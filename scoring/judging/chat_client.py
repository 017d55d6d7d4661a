"""The HTTP side of talking to an OpenAI-compatible `/chat/completions` server, shared by the LM
judge (`openai_backend`) and the routing tagger (`routing.tagging`).

`ChatClient.post` sends one request body and returns the decoded JSON reply, retrying what is
worth retrying (429, 5xx, timeouts, connection errors) with exponential backoff and jitter, or the
server's Retry-After (capped); other 4xx answers fail at once with a hint. `map_concurrently` runs
one function over many items on a pool of `concurrency` threads, which bounds the requests in
flight, and stops the others' retries on the first failure.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx

from scoring.judging.backend import JudgeBackendError

# Retry-After comes from the server; a bogus or hostile value must not park a worker for hours.
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 30.0
# How much of an error body goes into an exception message.
BODY_EXCERPT_CHARS = 300

T = TypeVar("T")
R = TypeVar("R")


class Abandoned(JudgeBackendError):
    """A worker gave up because another item already failed; never the error reported."""

    def __init__(self):
        super().__init__("abandoned after an earlier failure")


class Retryable(Exception):
    """One attempt failed in a way worth retrying (429, 5xx, connection error, timeout)."""

    def __init__(self, what: str, retry_after: float | None = None):
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def excerpt(text: str) -> str:
    text = text.strip()
    if len(text) > BODY_EXCERPT_CHARS:
        return text[:BODY_EXCERPT_CHARS] + "..."
    return text


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds, capped; None when absent or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from these servers, fall back to backoff
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class ChatClient:
    """One shared `httpx.Client` (pool sized to `concurrency`) for a chat-completions endpoint.

    `rejection_hint(status, body_text)` may turn a 4xx answer into a specific error message (the
    judge explains missing logprobs support that way); None falls back to the generic message.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        rejection_hint: Callable[[int, str], str | None] | None = None,
    ):
        if concurrency < 1:
            raise JudgeBackendError(f"concurrency must be at least 1, not {concurrency}")
        if max_retries < 0:
            raise JudgeBackendError(f"max_retries must be at least 0, not {max_retries}")
        base = base_url.rstrip("/")
        # Accept the full endpoint too: people paste either form.
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.rejection_hint = rejection_hint
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            # As many connections as workers: a worker never waits on the pool.
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self.server = f"{self.url} (model {model!r})"

    def close(self) -> None:
        self._client.close()

    def post(self, body: dict, what: str, stop: threading.Event | None = None) -> dict:
        """The decoded JSON reply to `body`, after retries; `what` names the item in errors.
        `stop` (set by another worker's failure) ends a backoff wait at once."""
        stop = stop or threading.Event()
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._post_once(body, what)
            except Retryable as failure:
                if attempts > self.max_retries:
                    raise JudgeBackendError(
                        f"{self.server}: gave up on {what} after {attempts} attempts; "
                        f"last {failure.what}"
                    ) from failure
                delay = failure.retry_after
                if delay is None:
                    delay = min(self.backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
                    # Jitter so that a pool of workers hit by the same outage does not retry in
                    # lockstep.
                    delay *= 1.0 + random.random() * 0.25
                # Event.wait instead of sleep: another worker's failure ends the wait at once.
                if stop.wait(delay):
                    raise Abandoned() from failure

    def _post_once(self, body: dict, what: str) -> dict:
        try:
            response = self._client.post(self.url, json=body)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise Retryable(f"error {type(error).__name__}: {error}") from error
        except httpx.HTTPError as error:
            # A bad URL, an unsupported scheme, ...: retrying will not help.
            raise JudgeBackendError(f"{self.server}: request failed: {error!r}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            raise Retryable(
                f"status {status}: {excerpt(response.text)}",
                retry_after=retry_after_seconds(response),
            )
        if status >= 400:
            text = response.text
            message = self.rejection_hint(status, text) if self.rejection_hint else None
            if message:
                raise JudgeBackendError(message)
            hint = ""
            if status in (401, 403):
                hint = " (check the API key)"
            elif status == 404:
                hint = " (check base_url, which should end in /v1, and the model name)"
            raise JudgeBackendError(f"{self.server}: status {status}{hint}: {excerpt(text)}")
        try:
            return response.json()
        except ValueError as error:
            raise JudgeBackendError(
                f"{self.server}: response for {what} is not JSON: {excerpt(response.text)!r}"
            ) from error


def map_concurrently(
    fn: Callable[[T, threading.Event], R], items: Sequence[T], *, workers: int, name: str
) -> list[R]:
    """[fn(item, stop) for item in items] on `workers` threads, in the order given. The first
    failure sets `stop` (so other workers stop retrying), abandons what has not started, and is
    raised once the requests in flight are done (in input order, never an `Abandoned`)."""
    if not items:
        return []
    stop = threading.Event()

    def work(item: T) -> R:
        if stop.is_set():
            raise Abandoned()
        try:
            return fn(item, stop)
        except BaseException:
            stop.set()
            raise

    # The pool size is the bound on requests in flight: each worker does one at a time.
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix=name) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException as error:
            stop.set()
            for future in futures:
                future.cancel()
            failure = error
    # Leaving the pool waited for the requests in flight. Report the first real failure (in
    # input order), not an abandoned follow-on; an interrupt in this thread wins outright.
    if isinstance(failure, Exception):
        for future in futures:
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None and not isinstance(error, Abandoned):
                raise error
    raise failure
