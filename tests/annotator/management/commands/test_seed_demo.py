"""The seed_demo command: a demo project with working logins, safe to run again."""

import re

from annotator.models import Comparison, LMLabel, Membership, Project
from tests.conftest import command_output


def test_seed_demo_creates_a_project_and_prints_working_logins(db, client):
    output = command_output("seed_demo")

    project = Project.objects.get(slug="demo")
    assert project.comparisons.count() == 50
    assert set(LMLabel.objects.values_list("judge_name", flat=True)) == {"ChatGPT", "GPT-4"}
    assert "http://127.0.0.1:8000/admin/" in output
    logins = dict(re.findall(r"^\s+(admin|annotator\d)\s+(\S+)$", output, re.M))
    assert set(logins) == {"admin", "annotator1", "annotator2"}
    assert client.login(username="admin", password=logins["admin"])
    assert client.login(username="annotator1", password=logins["annotator1"])
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"admin": "admin", "annotator1": "annotator", "annotator2": "annotator"}


def test_seed_demo_can_run_again(db):
    command_output("seed_demo")
    output = command_output("seed_demo")
    assert "0 comparisons created, 50 already there" in output
    assert Comparison.objects.count() == 50
