"""The LM tagger: prompts and JSON answers, the openai-compatible tagger against a real in-test
chat-completions server, the hf-local tagger on a tiny llama, and tags in the feature rows."""

import io
import json
import re

import orjson
import pytest
from django.core.management import call_command

from routing import tagging
from routing.features import FEATURE_VERSION, features_compute, project_feature_version
from routing.models import ComparisonFeatures, Tagger
from routing.selectors import routing_inputs
from routing.services import project_tagger_set, tagger_save, tagger_version_of
from routing.tagging import (
    DIMENSIONS,
    UNKNOWN,
    OpenAITagger,
    answer_prefix,
    answer_suffix,
    parse_answer,
    tag_messages,
)
from tests.routing.conftest import comparison_record
from tests.scoring.judging.fake_chat_server import FakeJudgeServer, Handler, completion, served

LEVEL = DIMENSIONS["expertise_level"]
SAFETY = DIMENSIONS["safety_concern"]

# -- prompts and answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"expertise_level": "expert domain knowledge"}', "expert domain knowledge"),
        ('```json\n{"expertise_level": "General Public"}\n```', "general public"),
        (
            'Sure! {"expertise_level": "basic  domain_knowledge"} Hope it helps.',
            "basic domain knowledge",
        ),
        ('{"Expertise Level": "general public"}', "general public"),  # the only key, near enough
        ('{"expertise_level": "wizard"}', None),  # not an allowed value
        ('{"safety_concern": "safe"}', None),  # another dimension's answer
        ('{"expertise_level": 2}', None),
        ("expert domain knowledge", None),  # not JSON
        ('{"expertise_level": "general public"', None),  # cut off
        ("", None),
        (None, None),
    ],
)
def test_answers_are_parsed_and_checked_against_the_allowed_values(text, expected):
    assert parse_answer(LEVEL, text) == expected


def test_each_dimension_is_asked_once_as_json_with_its_allowed_values():
    for dimension in DIMENSIONS.values():
        system, user = tag_messages(dimension, "What is a quark?")
        assert system["role"] == "system" and "JSON" in system["content"]
        assert "What is a quark?" in user["content"] and "JSON" in user["content"]
        # The question comes before the prompt, so that servers can cache it.
        assert dimension.question in system["content"]
        for value in dimension.values:
            assert json.dumps(value) in system["content"]
            # What the hf-local tagger scores is the JSON answer itself.
            answer = answer_prefix(dimension) + answer_suffix(value)
            assert json.loads(answer) == {dimension.name: value}
            assert parse_answer(dimension, answer) == value
    assert len(DIMENSIONS["subject_of_expertise"].values) == 46
    assert [len(DIMENSIONS[n].values) for n in list(DIMENSIONS)[1:5]] == [3, 4, 4, 3]


def test_long_prompts_are_cut_in_the_middle():
    prompt = "HEAD " + "x" * 20000 + " TAIL"
    (_, user) = tag_messages(LEVEL, prompt)
    assert "HEAD" in user["content"] and "TAIL" in user["content"]
    assert len(user["content"]) < tagging.MAX_PROMPT_CHARS + 1000


def test_the_version_follows_model_prompts_and_dimensions(monkeypatch):
    base = Tagger(name="t", model_path="/models/a", dimensions=["expertise_level", "language"])
    version = tagger_version_of(base)
    same = Tagger(name="other", model_path="/models/a", dimensions=["language", "expertise_level"])
    assert tagger_version_of(same) == version  # name and dimension order change nothing
    faster = Tagger(name="t", model_path="/models/a", dimensions=base.dimensions, batch_size=8)
    assert tagger_version_of(faster) == version
    assert tagger_version_of(Tagger(model_path="/models/b", dimensions=base.dimensions)) != version
    assert tagger_version_of(Tagger(model_path="/models/a", dimensions=["language"])) != version
    monkeypatch.setattr(tagging, "SYSTEM", tagging.SYSTEM + " Be brief.")
    assert tagger_version_of(base) != version


# -- openai-compatible, against an in-test server ---------------------------------------------


class FakeTaggerServer(FakeJudgeServer):
    def __init__(self):
        super().__init__()
        self.invalid_marker = None  # prompts containing it always get an invalid value
        self.invalid_once_marker = None  # ... get an invalid value, then a valid one
        self.reject_response_format = False


class TaggerHandler(Handler):
    """The judge test server's HTTP side, answering tag questions in JSON: expert domain
    knowledge for prompts about quarks, general public otherwise; always safe."""

    def _answer(self, state, body, number):
        if number <= state.fail_429_first:
            return self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
        if state.reject_response_format and "response_format" in body:
            return self._send(400, {"error": {"message": "response_format is not supported"}})
        user = body["messages"][1]["content"]
        name = re.search(r'Answer with JSON only: \{"(\w+)"', user).group(1)
        prompt = re.search(r"\[User Prompt\]\n(.*)\n\[End of User Prompt\]", user, re.S).group(1)
        value = {"expertise_level": "general public", "safety_concern": "safe"}[name]
        if name == "expertise_level" and "quark" in prompt:
            value = "expert domain knowledge"
        retried = len(body["messages"]) > 2
        if state.invalid_marker and state.invalid_marker in prompt:
            value = "wizard"
        if state.invalid_once_marker and state.invalid_once_marker in prompt and not retried:
            value = "wizard"
        reply = completion(body["model"], [("x", -0.1)])
        reply["choices"][0]["message"]["content"] = (
            "```json\n" + json.dumps({name: value}) + "\n```"
        )
        return self._send(200, reply)


@pytest.fixture
def server():
    with served(TaggerHandler, FakeTaggerServer()) as state:
        yield state


@pytest.fixture
def make_tagger(server):
    made = []

    def make(**kwargs):
        kwargs.setdefault("base_url", server.base_url)
        kwargs.setdefault("model", "tagger-7b")
        kwargs.setdefault("dimensions", ["expertise_level", "safety_concern"])
        kwargs.setdefault("backoff_s", 0.01)
        kwargs.setdefault("timeout_s", 5.0)
        tagger = OpenAITagger(**kwargs)
        made.append(tagger)
        return tagger

    yield make
    for tagger in made:
        tagger.close()


def test_openai_tagger_asks_for_json_and_reads_the_answers(make_tagger, server):
    answers = make_tagger(api_key="sk-tag").answers(["What is a quark?", "Say hi."])
    assert answers == [
        {"expertise_level": "expert domain knowledge", "safety_concern": "safe"},
        {"expertise_level": "general public", "safety_concern": "safe"},
    ]
    assert server.count == 4  # one request per prompt and dimension
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-tag"
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert request["body"]["temperature"] == 0
    assert request["body"]["model"] == "tagger-7b"


def test_an_invalid_value_is_asked_again_once_then_recorded_as_unknown(make_tagger, server):
    server.invalid_marker = "NONSENSE"
    server.invalid_once_marker = "SLOPPY"
    answers = make_tagger(dimensions=["expertise_level"]).answers(
        ["NONSENSE about quarks", "SLOPPY question", "Say hi."]
    )
    assert answers == [
        {"expertise_level": UNKNOWN},
        {"expertise_level": "general public"},
        {"expertise_level": "general public"},
    ]
    bodies = [r["body"] for r in server.requests]
    nonsense = [b for b in bodies if "NONSENSE" in b["messages"][1]["content"]]
    assert len(nonsense) == 2  # asked, asked again, given up: the run goes on
    retry = max(nonsense, key=lambda b: len(b["messages"]))["messages"]
    assert retry[2]["role"] == "assistant" and "wizard" in retry[2]["content"]
    assert "not a valid answer" in retry[3]["content"]
    assert len(bodies) == 2 + 2 + 1


def test_rate_limits_are_retried(make_tagger, server):
    server.fail_429_first = 2
    answers = make_tagger(dimensions=["safety_concern"], concurrency=1).answers(["Say hi."])
    assert answers == [{"safety_concern": "safe"}]
    assert server.count == 3


def test_a_server_without_json_mode_is_asked_in_plain_text(make_tagger, server):
    server.reject_response_format = True
    tagger = make_tagger(dimensions=["expertise_level"], concurrency=1)
    assert tagger.answers(["What is a quark?", "Say hi."]) == [
        {"expertise_level": "expert domain knowledge"},
        {"expertise_level": "general public"},
    ]
    assert tagger.json_mode is False
    assert server.count == 3  # one refusal, then plain requests only


# -- hf-local, on a tiny llama ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from tests.scoring.tiny_models import tiny_llama, tiny_tokenizer

    words = " ".join(
        [tagging.SYSTEM, tagging.TEMPLATE]
        + [f"{d.name} {d.question} {' '.join(d.values)}" for d in DIMENSIONS.values()]
    )
    tokenizer = tiny_tokenizer(words)
    return tiny_llama(tokenizer, seed=3), tokenizer


def _hf(tiny, **options):
    pytest.importorskip("torch")
    model, tokenizer = tiny
    return tagging.HFTagger(model=model, tokenizer=tokenizer, device="cpu", **options)


PROMPTS = [
    "what is the capital of france ?",
    "Explain the chemistry of a reaction in expert detail " * 4,
    "good",
]


def test_hf_tagger_always_answers_an_allowed_value_deterministically(tiny):
    dims = ["subject_of_expertise", "safety_concern", "format_constraints"]
    tagger = _hf(tiny, dimensions=dims, batch_size=16)
    answers = tagger.answers(PROMPTS)
    for row in answers:
        assert list(row) == dims
        for name, value in row.items():
            assert value in DIMENSIONS[name].values
    assert tagger.answers(PROMPTS) == answers
    # Batching, padding and the cache change nothing: one prompt at a time gives the same.
    alone = _hf(tiny, dimensions=dims, batch_size=1)
    assert [alone.answers([p])[0] for p in PROMPTS] == answers


def test_hf_tagger_scores_are_the_log_likelihood_of_the_json_answer(tiny):
    import torch

    tagger = _hf(tiny, dimensions=["safety_concern"], batch_size=64)
    model, _ = tiny
    scores = tagger.value_scores(SAFETY, PROMPTS)
    for prompt, row in zip(PROMPTS, scores, strict=True):
        prefix = tagger.prefix_ids(SAFETY, prompt)
        for value, score in zip(SAFETY.values, row, strict=True):
            tail = tagger._tokens(answer_suffix(value))
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([prefix + tail])).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            expected = sum(float(logprobs[len(prefix) - 1 + j, t]) for j, t in enumerate(tail))
            assert score == pytest.approx(expected, abs=1e-4)
        best = max(range(len(row)), key=lambda k: (row[k], -k))
        assert tagger.answers([prompt])[0]["safety_concern"] == SAFETY.values[best]


# -- tags in the feature rows -----------------------------------------------------------------


def test_tags_land_in_feature_rows_and_a_new_version_recomputes(
    routing_project, import_records, server, monkeypatch
):
    # MiniLM (tested with the features) costs seconds to load; the cosines do not matter here.
    monkeypatch.setattr("routing.embeddings.pair_cosines", lambda a, b: [0.5] * len(a))
    records = [comparison_record(i) for i in range(3)]
    records[0]["prompt"] = "What is a quark?"
    records[1]["metadata"] = {"source": "LLMBar", "subset": "Natural"}
    import_records(records)
    assert project_feature_version(routing_project) == FEATURE_VERSION
    assert features_compute(project=routing_project).computed == 3

    out = io.StringIO()
    call_command(
        "tagger",
        "remote",
        "--backend=openai-compatible",
        f"--base-url={server.base_url}",
        "--model-name=tagger-7b",
        "--dimensions=expertise_level",
        "--project=proj",
        "--run",
        stdout=out,
    )
    result = orjson.loads(out.getvalue())
    tagger = Tagger.objects.get(name="remote")
    version = f"{FEATURE_VERSION}+{tagger.version}"
    assert result["version"] == tagger.version
    assert result["projects"]["proj"] == {
        "features_computed": 3,
        "feature_version": version,
        "unknown_tags": {},
    }
    rows = {
        r.comparison.external_id: r
        for r in ComparisonFeatures.objects.filter(version=version).select_related("comparison")
    }
    assert rows["c000"].tags == ["subset=s1", "expertise_level=expert domain knowledge"]
    assert rows["c001"].tags == [
        "source=LLMBar",
        "subset=Natural",
        "expertise_level=general public",
    ]
    assert set(rows["c000"].values) >= {"rouge1_f", "cosine", "len_diff"}
    # The router reads the tagged rows: the tags are in its vocabulary.
    data = routing_inputs(routing_project)
    assert data.feature_version == version and data.missing_features == 0
    assert "expertise_level=expert domain knowledge" in data.inputs.tag_vocabulary

    # Nothing is stale: a second run does nothing and asks the server nothing.
    asked = server.count
    assert features_compute(project=routing_project).computed == 0
    assert server.count == asked

    # Another dimension is another version: every row is recomputed under it, without
    # recomputing the text features (the rows of the other version already have them).
    tagger.dimensions = ["expertise_level", "safety_concern"]
    tagger_save(tagger=tagger)
    monkeypatch.setattr(
        "routing.features.features_for_texts",
        lambda rows: pytest.fail("text features recomputed"),
    )
    server.invalid_marker = "number 2"
    done = features_compute(project=routing_project)
    assert done.computed == 3
    assert done.version == project_feature_version(routing_project) != version
    assert done.unknown == {"expertise_level": 1, "safety_concern": 1}
    row = ComparisonFeatures.objects.get(comparison__external_id="c002", version=done.version)
    assert row.tags == ["subset=s1", f"expertise_level={UNKNOWN}", f"safety_concern={UNKNOWN}"]
    assert row.values == rows["c002"].values

    # Without a tagger the project is back on the plain version (whose rows are still there).
    project_tagger_set(project=routing_project, tagger=None)
    assert project_feature_version(routing_project) == FEATURE_VERSION
    assert routing_inputs(routing_project).missing_features == 0


def test_a_tagger_is_configured_in_the_admin(admin_client, routing_project):
    from django.urls import reverse

    response = admin_client.post(
        reverse("admin:routing_tagger_add"),
        {
            "name": "local",
            "backend": "hf-local",
            "dimensions": '["expertise_level", "language"]',
            "json_mode": "on",
            "concurrency": "8",
            "timeout_s": "60",
            "batch_size": "64",
            "device": "auto",
            "dtype": "auto",
            "project_links-TOTAL_FORMS": "1",
            "project_links-INITIAL_FORMS": "0",
            "project_links-0-project": str(routing_project.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tagger = Tagger.objects.get(name="local")
    assert tagger.version == tagger_version_of(tagger)
    assert project_feature_version(routing_project) == f"{FEATURE_VERSION}+{tagger.version}"
    bad = admin_client.post(
        reverse("admin:routing_tagger_change", args=[tagger.pk]),
        {
            "name": "local",
            "backend": "hf-local",
            "dimensions": '["mood"]',
            "concurrency": "8",
            "timeout_s": "60",
            "batch_size": "64",
            "device": "auto",
            "dtype": "auto",
            "project_links-TOTAL_FORMS": "0",
            "project_links-INITIAL_FORMS": "0",
        },
    )
    assert bad.status_code == 200 and "unknown tag dimensions" in bad.content.decode()
    assert admin_client.get(reverse("admin:routing_tagger_changelist")).status_code == 200
