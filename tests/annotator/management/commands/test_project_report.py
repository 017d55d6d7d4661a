"""`manage.py project_report`: names from imported data cannot drive the reader's terminal."""

import orjson
import pytest
from django.core.management import call_command

from annotator.management.commands.project_report import terminal_safe
from tests.factories import ComparisonFactory, HumanLabelFactory, LMLabelFactory

RED = "\x1b[31m"


@pytest.fixture
def hostile(project):
    """Comparisons whose model and judge names carry an ESC sequence and a bidi override."""
    for i in range(6):
        comparison = ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            model_a=f"{RED}evil-model",
            model_b="plain\u202emodel",
        )
        for who in ("ann", "bob"):
            HumanLabelFactory(comparison=comparison, annotator_name=who, overall_choice="A")
        LMLabelFactory(comparison=comparison, judge_name=f"{RED}judge", choice="A", p_a=0.9)
    return project


def _run(*args, capsys) -> str:
    call_command("project_report", "--project", "proj", "--bootstrap", "0", *args)
    return capsys.readouterr().out


def test_the_text_report_escapes_control_characters_in_names(hostile, capsys):
    out = _run(capsys=capsys)

    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mevil-model" in out and "\\x1b[31mjudge" in out
    assert "plain\\u202emodel" in out


def test_the_json_report_escapes_them_and_stays_valid_json(hostile, capsys):
    out = _run("--json", capsys=capsys)

    assert "\x1b" not in out and "\u202e" not in out
    models = {m["model"] for m in orjson.loads(out)["leaderboard"]["human"]["models"]}
    assert models == {f"{RED}evil-model", "plain\u202emodel"}


def test_terminal_safe_keeps_text_and_line_breaks_and_escapes_every_control():
    assert terminal_safe("Ann Lee\tx\n\u00e9\U0001f600") == "Ann Lee\\x09x\n\u00e9\U0001f600"
    assert terminal_safe("\x9b2J\U000e0001", json=True) == "\\u009b2J\\udb40\\udc01"
