"""A judge backend for any OpenAI-compatible chat-completions server (vLLM, TGI, hosted APIs).

It reads the judge's answer the way AlpacaEval 2 reads GPT-4: one request per shown order with
`max_tokens=1, temperature=0, logprobs=true, top_logprobs=N`, then the log-probabilities of the
label tokens among the top N candidates for the first generated token. Those are renormalised
over the labels only (`combine.renormalise`) and turned into P(first shown response is better)
(`combine.p_first_better`). Nothing is parsed from generated text, so there are no parse failures;
a server that cannot return logprobs is refused with a clear error instead of being guessed at.

Configuration is the constructor (docs/architecture.md, "The LM judge")::

    backend = OpenAICompatibleBackend(
        base_url="http://gpu-host:8000/v1",  # the server's OpenAI root; ".../chat/completions" ok
        model="Qwen/Qwen2.5-7B-Instruct",     # the name the server serves the model under
        spec=PromptSpec(),                    # system text, template and scale (binary, 5-point)
        api_key=None,                         # sent as "Authorization: Bearer <key>" when given
        concurrency=8,                        # requests in flight at most
        timeout_s=60.0,                       # httpx timeout per request (connect, read, ...)
        max_retries=5,                        # retries of 429 / 5xx / network errors
        backoff_s=0.5,                        # first retry delay; doubles each retry
        max_input_chars=None,                 # see `truncate_responses`
        top_logprobs=20,                      # candidates asked for (vLLM: <= --max-logprobs)
    )
    scores = backend.score(inputs)            # list[OrderScore], in the order of `inputs`
    backend.close()

vLLM's prefix caching shares the system text and prompt between the two orders of a pair, so
sending them as separate requests costs little. `transport` (an `httpx.BaseTransport`) replaces
the network layer, e.g. with `httpx.MockTransport` in tests.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import httpx

from scoring.judging.backend import JudgeBackendError, OrderScore
from scoring.judging.chat_client import ChatClient, excerpt, map_concurrently
from scoring.judging.combine import p_first_better, renormalise
from scoring.judging.prompts import (
    SCALES,
    TRUNCATION_MARKER,
    JudgeInput,
    PromptSpec,
    judge_messages,
)

# A truncated response keeps at least this much text, even if the prompt alone is over budget:
# judging two bare markers would be a verdict about nothing.
MIN_KEPT_CHARS = 200


def _cut(text: str, limit: int) -> str:
    """`text` shortened to about `limit` characters by cutting out its middle."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(TRUNCATION_MARKER), MIN_KEPT_CHARS)
    if keep + len(TRUNCATION_MARKER) >= len(text):
        return text  # the floor leaves nothing worth cutting
    # Head and tail both matter to a judge: the opening says what the answer is, the end often
    # holds the conclusion or final result.
    tail = keep // 2
    head = keep - tail
    return text[:head] + TRUNCATION_MARKER + (text[-tail:] if tail else "")


def truncate_responses(
    prompt: str, first: str, second: str, max_input_chars: int | None
) -> tuple[str, str, bool]:
    """Shorten the two responses so that prompt + first + second fit in `max_input_chars`.

    Policy:
    - Only the responses are cut; the user prompt, the system text, the template and the question
      are never touched (a judge that cannot see the task or the question cannot judge).
    - The characters left after the prompt are shared fairly: a response shorter than half of
      them is kept whole and the other gets the rest; otherwise each gets half.
    - A response is cut in its middle: its head and its tail are kept around
      `prompts.TRUNCATION_MARKER`, which counts against its share.
    - Each cut response keeps at least `MIN_KEPT_CHARS` characters, so with a very long prompt the
      total may still exceed the limit; it is a soft limit for the responses, not a hard one.

    Returns (first, second, truncated); `truncated` is True when either response was shortened.
    The template's own text and the system text are not counted (a fixed overhead per request).
    """
    if max_input_chars is None or len(prompt) + len(first) + len(second) <= max_input_chars:
        return first, second, False
    budget = max(max_input_chars - len(prompt), 0)
    half = budget // 2
    if len(first) <= half:
        first_limit, second_limit = len(first), budget - len(first)
    elif len(second) <= half:
        first_limit, second_limit = budget - len(second), len(second)
    else:
        first_limit, second_limit = half, budget - half
    new_first, new_second = _cut(first, first_limit), _cut(second, second_limit)
    return new_first, new_second, (new_first != first or new_second != second)


class OpenAICompatibleBackend:
    """Scores judge inputs through an OpenAI-compatible `/chat/completions` endpoint.

    Implements `backend.JudgeBackend`. Thread-safe: one shared `httpx.Client` (its connection
    pool sized to `concurrency`) used by a pool of `concurrency` worker threads per `score` call.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        spec: PromptSpec,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_input_chars: int | None = None,
        top_logprobs: int = 20,
        transport: httpx.BaseTransport | None = None,
    ):
        if not base_url:
            raise JudgeBackendError("OpenAI-compatible judge: base_url is required")
        if not model:
            raise JudgeBackendError("OpenAI-compatible judge: model is required")
        if spec.scale not in SCALES:
            raise JudgeBackendError(f"unknown judge scale {spec.scale!r}; expected one of {SCALES}")
        if concurrency < 1:
            raise JudgeBackendError(f"concurrency must be at least 1, not {concurrency}")
        if max_retries < 0:
            raise JudgeBackendError(f"max_retries must be at least 0, not {max_retries}")
        if top_logprobs < 1:
            raise JudgeBackendError(f"top_logprobs must be at least 1, not {top_logprobs}")
        if max_input_chars is not None and max_input_chars < 1:
            raise JudgeBackendError(f"max_input_chars must be positive, not {max_input_chars}")
        self.model = model
        self.spec = spec
        self.concurrency = concurrency
        self.max_input_chars = max_input_chars
        self.top_logprobs = top_logprobs
        self._chat = ChatClient(
            base_url=base_url,
            model=model,
            api_key=api_key,
            concurrency=concurrency,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            transport=transport,
            rejection_hint=self._rejection_hint,
        )
        self.url = self._chat.url
        self._server = self._chat.server

    # -- public API --------------------------------------------------------------------------

    def score(self, inputs: Sequence[JudgeInput]) -> list[OrderScore]:
        """One OrderScore per input, in the order given. Raises JudgeBackendError on the first
        input that cannot be scored; requests not yet started are then abandoned."""
        return map_concurrently(
            self._score_one, inputs, workers=self.concurrency, name="judge-openai"
        )

    def close(self) -> None:
        self._chat.close()

    def __enter__(self) -> OpenAICompatibleBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one input ---------------------------------------------------------------------------

    def _score_one(self, item: JudgeInput, stop: threading.Event) -> OrderScore:
        first, second, truncated = truncate_responses(
            item.prompt, item.first, item.second, self.max_input_chars
        )
        body = {
            "model": self.model,
            "messages": judge_messages(self.spec, item, first=first, second=second),
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        data = self._chat.post(body, f"comparison {item.key}", stop)
        label_logprobs, token = self._read_label_logprobs(data, item)
        labels = self.spec.labels
        probs = renormalise(label_logprobs, labels)
        return OrderScore(
            key=item.key,
            label_probs=probs,
            p_first=p_first_better(probs, self.spec.scale),
            truncated=truncated,
            raw={
                "label_logprobs": label_logprobs,
                # How much of the judge's probability the labels had: low mass means the judge
                # wanted to say something else, a useful confidence signal.
                "label_mass": sum(math.exp(lp) for lp in label_logprobs.values()),
                "missing_labels": [label for label in labels if label not in label_logprobs],
                "token": token,
            },
        )

    def _rejection_hint(self, status: int, text: str) -> str | None:
        if "logprob" not in text.lower():
            return None
        return (
            f"{self._server} rejected the logprobs request with status {status}: "
            f"{excerpt(text)}. The LM judge needs a server that returns "
            f"`logprobs`/`top_logprobs` for chat completions (top_logprobs="
            f"{self.top_logprobs}; vLLM caps it with --max-logprobs)."
        )

    # -- reading the answer ------------------------------------------------------------------

    def _read_label_logprobs(self, data: object, item: JudgeInput) -> tuple[dict[str, float], str]:
        """{label: logprob} for the labels among the top logprobs, and the generated token."""
        where = f"{self._server}: response for comparison {item.key}"
        if not isinstance(data, dict):
            raise JudgeBackendError(f"{where} is not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            error = data.get("error")
            detail = f" (error: {excerpt(str(error))})" if error else ""
            raise JudgeBackendError(f"{where} has no choices{detail}")
        logprobs = choices[0].get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        first = content[0] if isinstance(content, list) and content else None
        top = first.get("top_logprobs") if isinstance(first, dict) else None
        if not top:
            # Missing, null or empty: the server ignored or does not support the request.
            raise JudgeBackendError(
                f"{self._server} returned no top logprobs. The LM judge scores the label tokens' "
                f"log-probabilities and needs a server that supports `logprobs: true` and "
                f"`top_logprobs` (asked for {self.top_logprobs}) on chat completions."
            )
        if not isinstance(top, list):
            raise JudgeBackendError(f"{where}: top_logprobs is not a list")
        labels = set(self.spec.labels)
        found: dict[str, float] = {}
        for entry in top:
            if not isinstance(entry, dict):
                raise JudgeBackendError(f"{where}: a top_logprobs entry is not an object")
            token, logprob = entry.get("token"), entry.get("logprob")
            if not isinstance(token, str) or isinstance(logprob, bool):
                raise JudgeBackendError(f"{where}: a top_logprobs entry lacks token or logprob")
            if not isinstance(logprob, int | float):
                raise JudgeBackendError(f"{where}: logprob {logprob!r} is not a number")
            # " A" and "A" are different tokens that both answer A.
            label = token.strip()
            # Some servers send NaN or infinities (JSON extensions); they carry no usable mass and
            # would poison the renormalisation. vLLM's -9999.0 for impossible tokens is harmless.
            if label in labels and math.isfinite(logprob):
                # The brief's rule for duplicates: keep the larger, not the sum.
                found[label] = max(found.get(label, -math.inf), float(logprob))
        if not found:
            tokens = [entry.get("token") for entry in top][:10]
            raise JudgeBackendError(
                f"{where}: none of the label tokens {self.spec.labels} is among the "
                f"{len(top)} top logprobs (saw {tokens}); check the prompt spec, or raise "
                f"top_logprobs"
            )
        token = first.get("token")
        if not isinstance(token, str):
            message = choices[0].get("message")
            token = message.get("content") if isinstance(message, dict) else None
        return found, token if isinstance(token, str) else ""
