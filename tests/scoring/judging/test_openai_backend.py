"""The OpenAI-compatible judge backend against a small, real chat-completions server.

The server runs in a background thread on 127.0.0.1 (port 0). It judges like a caricature of an
LM: it prefers the response that contains "GOOD", puts much of its mass on non-label tokens, and
can be told to fail in the ways real servers fail. No database, no network beyond loopback.
"""

import math
import socket
import time

import httpx
import pytest

from scoring.judging.backend import JudgeBackendError
from scoring.judging.combine import p_first_better
from scoring.judging.openai_backend import (
    MIN_KEPT_CHARS,
    OpenAICompatibleBackend,
    truncate_responses,
)
from scoring.judging.prompts import (
    DEFAULT_QUESTION,
    DEFAULT_SYSTEM,
    FIVE_POINT,
    TRUNCATION_MARKER,
    JudgeInput,
    PromptSpec,
    judge_messages,
)
from tests.scoring.judging.fake_chat_server import (
    FIVE,
    LOSE,
    WIN,
    completion,
    segment,
    served,
)


@pytest.fixture
def server():
    with served() as state:
        yield state


@pytest.fixture
def make_backend(server):
    made = []

    def make(**kwargs):
        kwargs.setdefault("base_url", server.base_url)
        kwargs.setdefault("model", "judge-7b")
        kwargs.setdefault("spec", PromptSpec())
        kwargs.setdefault("backoff_s", 0.01)
        kwargs.setdefault("timeout_s", 5.0)
        backend = OpenAICompatibleBackend(**kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def pair(cid: int = 1, prompt: str = "Name a prime number.", good: str = "GOOD: 7", bad="9"):
    """Both shown orders of one comparison whose response A is the good one."""
    return [
        JudgeInput(key=(cid, "AB"), prompt=prompt, first=good, second=bad),
        JudgeInput(key=(cid, "BA"), prompt=prompt, first=bad, second=good),
    ]


# -- scores -----------------------------------------------------------------------------------


def test_both_orders_renormalised_over_labels_only(make_backend):
    ab, ba = make_backend().score(pair())
    assert ab.key == (1, "AB") and ba.key == (1, "BA")
    # 0.3 / (0.3 + 0.1): "The", "\n" and the smaller duplicate "A" do not count.
    assert ab.p_first == pytest.approx(WIN / (WIN + LOSE))
    assert ba.p_first == pytest.approx(LOSE / (WIN + LOSE))
    assert ab.p_first > 0.5 > ba.p_first
    assert ab.label_probs == pytest.approx({"A": 0.75, "B": 0.25})
    assert sum(ba.label_probs.values()) == pytest.approx(1.0)
    assert ab.truncated is False
    assert ab.raw["label_logprobs"] == pytest.approx({"A": math.log(WIN), "B": math.log(LOSE)})
    assert ab.raw["label_mass"] == pytest.approx(WIN + LOSE)
    assert ab.raw["missing_labels"] == []
    assert ab.raw["token"] == "The"  # the generated token: the judge wanted to say "The ..."


def test_five_point_scale_takes_the_expectation(make_backend):
    spec = PromptSpec(scale=FIVE_POINT)
    ab, ba = make_backend(spec=spec).score(pair())
    total = sum(FIVE.values())
    expected_probs = {label: p / total for label, p in FIVE.items()}
    assert ab.label_probs == pytest.approx(expected_probs)
    assert ab.p_first == pytest.approx(p_first_better(expected_probs, FIVE_POINT))
    assert ab.p_first == pytest.approx((5 - (0.5 + 2 * 0.25 + 3 * 0.125 + 9 * 0.0625)) / 4)
    assert ab.p_first > 0.5 > ba.p_first
    assert ab.p_first + ba.p_first == pytest.approx(1.0)  # the fake judge is symmetric


def test_request_body_and_auth_header(make_backend, server):
    spec = PromptSpec(system="Judge the responses strictly.")
    item = pair()[0]
    make_backend(spec=spec, api_key="sk-test", top_logprobs=7).score([item])
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "judge-7b"
    assert body["max_tokens"] == 1
    assert body["temperature"] == 0
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 7
    assert body["messages"] == judge_messages(spec, item)
    assert body["messages"][0] == {"role": "system", "content": "Judge the responses strictly."}
    assert DEFAULT_QUESTION["binary"] in body["messages"][1]["content"]


def test_no_auth_header_without_key_and_full_endpoint_url_accepted(make_backend, server):
    make_backend(base_url=server.base_url + "/chat/completions/").score(pair()[:1])
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert "Authorization" not in request["headers"]
    assert request["body"]["messages"][0]["content"] == DEFAULT_SYSTEM


def test_empty_input_makes_no_request(make_backend, server):
    assert make_backend().score([]) == []
    assert server.count == 0


# -- retries ----------------------------------------------------------------------------------


def test_429_retried_honouring_retry_after(make_backend, server):
    server.fail_429_first = 2
    # A 5 s backoff would make this slow: Retry-After: 0 must win over it.
    backend = make_backend(backoff_s=5.0, max_retries=3)
    started = time.monotonic()
    (score,) = backend.score(pair()[:1])
    assert time.monotonic() - started < 2.0
    assert score.p_first == pytest.approx(0.75)
    assert server.count == 3  # two 429s, then the answer


def test_500_once_is_retried(make_backend, server):
    server.fail_500_times = 1
    (score,) = make_backend().score(pair()[:1])
    assert score.p_first == pytest.approx(0.75)
    assert server.count == 2


def test_retries_exhausted_names_attempts_and_last_status(make_backend, server):
    server.mode = "always_500"
    with pytest.raises(JudgeBackendError, match=r"after 3 attempts; last status 500") as info:
        make_backend(max_retries=2).score(pair()[:1])
    assert server.base_url in str(info.value)
    assert server.count == 3


def test_client_timeout_is_retried(make_backend, server):
    server.sleep_first_s = 1.0
    (score,) = make_backend(timeout_s=0.3).score(pair()[:1])
    assert score.p_first == pytest.approx(0.75)
    assert server.count == 2


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatibleBackend(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", spec=PromptSpec(), max_retries=2,
        backoff_s=0.01, timeout_s=2.0,
    )  # fmt: skip
    with backend, pytest.raises(JudgeBackendError, match=r"after 3 attempts; last error Connect"):
        backend.score(pair()[:1])


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["no_logprobs", "null_logprobs"])
def test_server_without_logprobs_is_a_clear_error(make_backend, server, mode):
    server.mode = mode
    with pytest.raises(JudgeBackendError) as info:
        make_backend().score(pair()[:1])
    message = str(info.value)
    assert server.base_url in message and "judge-7b" in message
    assert "logprobs" in message and "top_logprobs" in message
    assert server.count == 1


def test_logprobs_rejected_by_the_server_is_a_clear_error_without_retry(make_backend, server):
    server.mode = "unsupported"
    with pytest.raises(JudgeBackendError, match="top_logprobs") as info:
        make_backend().score(pair()[:1])
    assert "logprobs is not supported for this model" in str(info.value)
    assert "400" in str(info.value)
    assert server.count == 1


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        ("non_json", "not JSON"),
        ("no_choices", "no choices"),
        ("no_labels", r"none of the label tokens \('A', 'B'\)"),
        ("bad_request", "status 400"),
    ],
)
def test_malformed_responses_fail_without_retry(make_backend, server, mode, what):
    server.mode = mode
    with pytest.raises(JudgeBackendError, match=what):
        make_backend().score(pair()[:1])
    assert server.count == 1


def test_one_bad_input_fails_the_batch_with_its_own_error(make_backend, server):
    server.broken_marker = "BROKEN"
    inputs = [*pair(1), *pair(2, prompt="BROKEN prompt"), *pair(3), *pair(4)]
    with pytest.raises(JudgeBackendError, match=r"comparison \(2, 'AB'\).*none of the label"):
        make_backend(concurrency=2).score(inputs)


def test_bad_configuration_is_refused():
    for bad in ({"concurrency": 0}, {"max_retries": -1}, {"top_logprobs": 0}, {"model": ""}):
        kwargs = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "spec": PromptSpec()}
        with pytest.raises(JudgeBackendError):
            OpenAICompatibleBackend(**(kwargs | bad))


# -- concurrency ------------------------------------------------------------------------------


def test_concurrency_is_bounded_and_order_kept(make_backend, server):
    server.delay_s = 0.02
    server.slow_marker, server.slow_delay_s = "SLOW", 0.15  # early inputs finish last
    inputs = [*pair(1, prompt="SLOW 1"), *pair(2, prompt="SLOW 2")]
    inputs += [item for cid in range(3, 8) for item in pair(cid)]
    scores = make_backend(concurrency=3).score(inputs)
    assert [score.key for score in scores] == [item.key for item in inputs]
    assert [score.p_first > 0.5 for score in scores] == [True, False] * 7
    assert server.count == len(inputs)
    assert 2 <= server.max_in_flight <= 3


# -- truncation -------------------------------------------------------------------------------


def test_truncation_keeps_prompt_and_question_and_marks_truncated(make_backend, server):
    prompt = "PROMPT-START " + "Explain the proof in detail. " * 4 + "PROMPT-END"
    long_good = "GOOD " + "a" * 3000 + " CONCLUSION"
    long_bad = "b" * 3000
    short = pair(2)[0]
    inputs = [JudgeInput(key=(1, "AB"), prompt=prompt, first=long_good, second=long_bad), short]
    long_score, short_score = make_backend(max_input_chars=900).score(inputs)
    assert long_score.truncated is True and short_score.truncated is False
    assert long_score.p_first > 0.5  # the head with "GOOD" survived

    users = [request["body"]["messages"][1]["content"] for request in server.requests]
    (long_user,) = [user for user in users if "PROMPT-START" in user]  # requests run in parallel
    (short_user,) = [user for user in users if "PROMPT-START" not in user]
    assert prompt in long_user and DEFAULT_QUESTION["binary"] in long_user
    assert long_user.count(TRUNCATION_MARKER) == 2
    first, second = segment(long_user, "A"), segment(long_user, "B")
    assert first.startswith("GOOD ") and first.endswith(" CONCLUSION")  # head and tail kept
    assert len(prompt) + len(first) + len(second) <= 900
    assert TRUNCATION_MARKER not in short_user


def test_truncation_shares_the_budget_fairly():
    # The short response is kept whole; the long one gets the rest.
    first, second, truncated = truncate_responses("p" * 100, "short", "x" * 2000, 1000)
    assert truncated and first == "short"
    assert TRUNCATION_MARKER in second and len(second) <= 1000 - 100 - len("short")
    # Under the limit: untouched.
    assert truncate_responses("p", "a", "b", 10) == ("a", "b", False)
    assert truncate_responses("p" * 50, "a" * 50, "b" * 50, None) == ("a" * 50, "b" * 50, False)
    # A prompt over the limit is never cut; the responses keep a floor of text.
    first, second, truncated = truncate_responses("p" * 5000, "a" * 1000, "b" * 1000, 1000)
    assert truncated
    assert len(first) == len(second) == MIN_KEPT_CHARS + len(TRUNCATION_MARKER)


# -- the transport hook -----------------------------------------------------------------------


def test_transport_hook_and_impossible_tokens():
    """`transport` replaces the network; vLLM's -9999 for an impossible label is harmless."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        top = [(" A", -9999.0), (" B", math.log(0.5)), ("No", math.log(0.4))]
        return httpx.Response(200, json=completion("m", top))

    backend = OpenAICompatibleBackend(
        base_url="http://judge.invalid/v1", model="m", spec=PromptSpec(),
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    with backend:
        (score,) = backend.score(pair()[:1])
    assert len(seen) == 1
    assert score.p_first == pytest.approx(0.0)
    assert score.label_probs == pytest.approx({"A": 0.0, "B": 1.0})
