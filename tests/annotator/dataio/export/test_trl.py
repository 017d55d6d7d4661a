"""The TRL export (annotator/dataio/export/trl.py): the pairs on a hand-checked example, the
most used judge without a primary one, loading with `datasets`, the conversational shape, the
margin, and TRL's RewardTrainer training on the conversational export with its margins."""

import io

import orjson
import pytest

from tests.annotator.dataio.export.helpers import exported_rows
from tests.conftest import DATA
from tests.factories import ComparisonFactory


def test_trl_export_on_a_hand_checked_example(project, run_export):
    project.primary_judge = "main"
    project.save()
    ComparisonFactory(
        project=project,
        external_id="majority-a",
        human_votes=[("A", "clearly"), ("A", "slightly"), ("B", "clearly")],
    )
    ComparisonFactory(
        project=project, external_id="split-vote", human_votes=[("A", "clearly"), ("B", "clearly")]
    )
    ComparisonFactory(
        project=project,
        external_id="tie-majority",
        human_votes=[("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")],
    )
    ComparisonFactory(
        project=project,
        external_id="humans-beat-lm",
        human_votes=[("B", "clearly")],
        lm_votes=[("main", "A")],
    )
    ComparisonFactory(
        project=project, external_id="lm-only", lm_votes=[("main", "B"), ("other", "A")]
    )
    ComparisonFactory(project=project, external_id="lm-tie", lm_votes=[("main", "tie")])
    ComparisonFactory(project=project, external_id="other-judge-only", lm_votes=[("other", "A")])
    ComparisonFactory(project=project, external_id="unlabelled")

    rows = exported_rows(run_export(format="trl"))

    # ComparisonFactory names each text after the comparison: "prompt x", "A of x", "B of x".
    assert rows == [
        {
            "prompt": "prompt majority-a",
            "chosen": "A of majority-a",
            "rejected": "B of majority-a",
            "external_id": "majority-a",
            "label_source": "human",
            "strength": "slightly",
            "agreement": 0.6667,
        },
        {
            "prompt": "prompt humans-beat-lm",
            "chosen": "B of humans-beat-lm",
            "rejected": "A of humans-beat-lm",
            "external_id": "humans-beat-lm",
            "label_source": "human",
            "strength": "clearly",
            "agreement": 1.0,
        },
        {
            "prompt": "prompt lm-only",
            "chosen": "B of lm-only",
            "rejected": "A of lm-only",
            "external_id": "lm-only",
            "label_source": "lm",
            "strength": "unknown",
            "agreement": None,
        },
    ]


def test_trl_export_without_a_primary_judge_uses_the_most_used_judge(project, run_export):
    ComparisonFactory(project=project, external_id="one", lm_votes=[("big", "A"), ("small", "B")])
    ComparisonFactory(project=project, external_id="two", lm_votes=[("big", "B")])
    rows = exported_rows(run_export(format="trl"))
    assert [(r["external_id"], r["chosen"]) for r in rows] == [
        ("one", "A of one"),
        ("two", "B of two"),
    ]


def test_trl_export_loads_with_datasets(project, run_import, tmp_path, run_export):
    datasets = pytest.importorskip("datasets")
    run_import(DATA / "hh-rlhf/harmless-test-100.jsonl.gz", format="hh-rlhf")
    path = tmp_path / "trl.jsonl"
    path.write_bytes(run_export(format="trl"))

    dataset = datasets.load_dataset("json", data_files=str(path), split="train")

    assert len(dataset) == 100
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert all(p.endswith("\n\nAssistant:") for p in dataset["prompt"])


def _trl(project, tmp_path, *flags) -> list[dict]:
    """The trl export of `project` through the command, written to a file."""
    from django.core.management import call_command

    path = tmp_path / "trl.jsonl"
    call_command(
        "export_dataset",
        "--project",
        project.slug,
        "--format",
        "trl",
        "--output",
        str(path),
        *flags,
        stderr=io.StringIO(),
    )
    return exported_rows(path.read_bytes())


CHAT_PROMPT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "what is the capital of france ?"},
    {"role": "assistant", "content": "paris"},
    {"role": "user", "content": "and italy ?"},
]
ROME = [{"role": "assistant", "content": "rome"}]


@pytest.fixture
def chat_and_plain(project):
    ComparisonFactory(
        project=project,
        external_id="chat",
        prompt="flattened",
        prompt_messages=CHAT_PROMPT,
        response_a="rome",
        response_a_messages=ROME,
        response_b="berlin",  # a plain response beside a conversation
        human_votes=[("A", "clearly")],
    )
    ComparisonFactory(project=project, external_id="plain", human_votes=[("B", "slightly")])
    return project


def test_auto_writes_every_pair_as_a_conversation_when_one_has_messages(chat_and_plain, tmp_path):
    chat, plain = _trl(chat_and_plain, tmp_path)

    assert (chat["prompt"], chat["chosen"]) == (CHAT_PROMPT, ROME)
    assert chat["rejected"] == [{"role": "assistant", "content": "berlin"}]
    assert plain["prompt"] == [{"role": "user", "content": "prompt plain"}]
    assert plain["chosen"] == [{"role": "assistant", "content": "B of plain"}]
    assert plain["rejected"] == [{"role": "assistant", "content": "A of plain"}]


def test_never_writes_the_flattened_text(chat_and_plain, tmp_path):
    chat, plain = _trl(chat_and_plain, tmp_path, "--conversational", "never")

    assert (chat["prompt"], chat["chosen"], chat["rejected"]) == ("flattened", "rome", "berlin")
    assert (plain["prompt"], plain["chosen"]) == ("prompt plain", "B of plain")


def test_auto_on_plain_text_is_the_standard_shape_and_always_wraps_it(project, tmp_path):
    ComparisonFactory(project=project, external_id="plain", human_votes=["A"])

    (standard,) = _trl(project, tmp_path)
    (wrapped,) = _trl(project, tmp_path, "--conversational", "always")

    assert standard["prompt"] == "prompt plain"
    assert wrapped["prompt"] == [{"role": "user", "content": "prompt plain"}]
    assert wrapped["chosen"] == [{"role": "assistant", "content": "A of plain"}]


def test_margin_follows_the_strength_of_the_deciding_label(project, tmp_path):
    project.primary_judge = "main"
    project.save()
    ComparisonFactory(project=project, external_id="clear", human_votes=[("A", "clearly")])
    ComparisonFactory(project=project, external_id="slight", human_votes=[("B", "slightly")])
    ComparisonFactory(project=project, external_id="binary", lm_votes=[("main", "A")])

    with_margin = _trl(project, tmp_path, "--margin")
    without = _trl(project, tmp_path)

    assert [(r["external_id"], r["strength"], r["margin"]) for r in with_margin] == [
        ("clear", "clearly", 1.0),
        ("slight", "slightly", 0.5),
        ("binary", "unknown", 0.0),
    ]
    assert all("margin" not in r for r in without)


def test_reward_trainer_trains_on_the_conversational_export_with_its_margins(project, tmp_path):
    """TRL's RewardTrainer reads the export as it is: conversations through the chat template,
    `margin` into its loss. A few steps on a tiny model built from a config."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from tests.scoring.tiny_models import tiny_reward_model, tiny_tokenizer

    strengths = ["clearly", "slightly", "clearly", "slightly"]
    for i, strength in enumerate(strengths):
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            prompt="what is the capital of france ?",
            prompt_messages=[{"role": "user", "content": "what is the capital of france ?"}],
            response_a="paris",
            response_b="rome",
            human_votes=[("A" if i % 2 else "B", strength)],
        )
    path = tmp_path / "trl.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in _trl(project, tmp_path, "--margin")))
    train = datasets.load_dataset("json", data_files=str(path), split="train")
    tokenizer = tiny_tokenizer()
    config = trl.RewardConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = trl.RewardTrainer(
        model=tiny_reward_model(tokenizer),
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
    )

    batch = next(iter(trainer.get_train_dataloader()))
    assert sorted(batch["margin"].tolist()) == [0.5, 0.5, 1.0, 1.0]
    # The first half of the rows are the chosen responses after the prompt, as the template says.
    chosen = tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True)
    assert chosen.startswith("user : what is the capital of france ? assistant :"), chosen
    result = trainer.train()
    assert result.global_step == 3 and result.training_loss == result.training_loss  # not NaN
