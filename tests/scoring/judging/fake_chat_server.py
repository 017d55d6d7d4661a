"""A small, real chat-completions server for the OpenAI-compatible judge (and the tagger's
tests): it runs in a thread on 127.0.0.1, judges like a caricature of an LM (it prefers the
response that contains "GOOD", puts much of its mass on non-label tokens), and can be told to
fail in the ways real servers fail."""

import json
import math
import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What the fake judge answers (probabilities before renormalisation). The label mass is 0.4 and
# the duplicate "A" (no space) must be ignored in favour of the larger " A".
WIN, LOSE, OTHER, DUPLICATE = 0.3, 0.1, 0.5, 0.02
FIVE = {"1": 0.4, "2": 0.2, "3": 0.1, "4": 0.05, "5": 0.05}  # first is GOOD; mirrored otherwise


class FakeJudgeServer:
    """State shared by the handler threads: what to answer, what was asked, how busy it got."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"path", "headers", "body"}
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_429_first = 0  # the first K requests get 429 with Retry-After: 0
        self.fail_500_times = 0  # then this many get 500
        self.mode = "ok"
        self.broken_marker = None  # requests whose text contains it get top logprobs sans labels
        self.delay_s = 0.0
        self.slow_marker = None  # requests whose text contains it take slow_delay_s
        self.slow_delay_s = 0.0
        self.sleep_first_s = 0.0  # the very first request sleeps this long (client timeouts)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def segment(text: str, name: str) -> str:
    match = re.search(rf"\[Response {name}\]\n(.*)\n\[End of Response {name}\]", text, re.DOTALL)
    return match.group(1) if match else ""


def completion(model: str, top: list[tuple[str, float]]) -> dict:
    entries = [{"token": token, "logprob": logprob, "bytes": None} for token, logprob in top]
    best = max(entries, key=lambda entry: entry["logprob"])
    return {
        "id": "cmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": best["token"]},
                "logprobs": {"content": [dict(best, top_logprobs=entries)]},
                "finish_reason": "length",
            }
        ],
    }


def _judge(user: str) -> list[tuple[str, float]]:
    """Top logprobs for a user message: the first shown response wins when it says GOOD."""
    first_wins = "GOOD" in segment(user, "A")
    if "one digit" in user:  # the five-point question
        probs = FIVE if first_wins else {label: FIVE[str(6 - int(label))] for label in FIVE}
        # Some digits come with a leading space, as tokenizers often produce them.
        top = [(" " * (label in "24") + label, math.log(p)) for label, p in probs.items()]
        return [("The", math.log(0.2)), *top]
    win, lose = (" A", " B") if first_wins else (" B", " A")
    return [
        ("The", math.log(OTHER)),
        (win, math.log(WIN)),
        (lose, math.log(LOSE)),
        ("A", math.log(DUPLICATE)),
        ("\n", math.log(0.05)),
    ]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; every reply has a length
    server: "ThreadingHTTPServer"

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, payload, headers: dict | None = None):
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        state: FakeJudgeServer = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with state.lock:
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            number = len(state.requests)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(state, body, number)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, state: FakeJudgeServer, body: dict, number: int):
        user = body["messages"][-1]["content"]
        delay = state.delay_s
        if state.slow_marker and state.slow_marker in user:
            delay = state.slow_delay_s
        if number == 1 and state.sleep_first_s:
            delay = state.sleep_first_s
        time.sleep(delay)
        if number <= state.fail_429_first:
            return self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
        if number <= state.fail_429_first + state.fail_500_times or state.mode == "always_500":
            return self._send(500, {"error": "internal"})
        mode = state.mode
        if state.broken_marker and state.broken_marker in user:
            mode = "no_labels"
        if mode == "unsupported":
            message = {"message": "logprobs is not supported for this model", "type": "invalid"}
            return self._send(400, {"error": message})
        if mode == "bad_request":
            return self._send(400, {"error": {"message": "messages: field required"}})
        if mode == "non_json":
            return self._send(200, b"<html>Bad Gateway</html>")
        if mode == "no_choices":
            return self._send(200, {"object": "chat.completion", "choices": []})
        top = _judge(user)
        if mode == "no_labels":
            top = [("The", -0.5), ("Sure", -1.5), ("I", -2.0)]
        reply = completion(body["model"], top)
        if mode == "no_logprobs":
            del reply["choices"][0]["logprobs"]
        elif mode == "null_logprobs":
            reply["choices"][0]["logprobs"] = None
        return self._send(200, reply)


@contextmanager
def served(handler: type[Handler] = Handler, state: FakeJudgeServer | None = None):
    """The fake server on a free loopback port, in a thread, until the block ends; yields its
    state (with `base_url` set)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.state = state if state is not None else FakeJudgeServer()
    httpd.state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()
