"""config/gunicorn.py: gunicorn's own lines are in the application's log format."""

import httpx

from tests.config.conftest import json_lines


def test_the_server_logs_nothing_but_json_lines(served):
    httpx.get(served.base + "/accounts/login/", timeout=10)
    lines = served.log_path.read_text().splitlines()
    assert any("Booting worker" in line for line in lines)  # gunicorn's own lines too
    assert [line for line in lines[:-1] if not line.startswith("{")] == []
    assert len(json_lines("\n".join(lines[:-1]))) == len(lines) - 1
