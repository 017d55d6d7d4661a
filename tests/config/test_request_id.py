"""config/request_id.py: the request id of every log line of a request is in its response."""

import httpx

from tests.config.conftest import json_lines
from tests.conftest import wait_for


def test_every_response_carries_the_request_id_of_its_log_lines(served):
    response = httpx.get(served.base + "/accounts/login/", timeout=10)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]

    def finished_line():
        lines = json_lines(served.log_path.read_text())
        return next(
            (
                line
                for line in lines
                if line.get("request_id") == request_id and line["event"] == "request_finished"
            ),
            None,
        )

    finished = wait_for(finished_line, timeout=10, what="the request's log line")
    assert finished["code"] == 200
    assert finished["request"] == "GET /accounts/login/"
    # Another request, another id.
    assert httpx.get(served.base + "/accounts/login/").headers["X-Request-ID"] != request_id
