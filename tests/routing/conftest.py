import pytest

from tests.factories import ProjectFactory


def comparison_record(
    i: int,
    *,
    lm: str | None = "A",
    p_a: float = 0.9,
    consistent: bool | None = True,
    human: str | None = None,
    subset: str = "s1",
) -> dict:
    record = {
        "external_id": f"c{i:03d}",
        "prompt": f"Question number {i}: what is {i} plus {i}?",
        "response_a": f"The answer is {2 * i}. Paris has {i} bridges.",
        "response_b": f"It is {2 * i + 1}, says NASA.",
        "metadata": {"subset": subset},
        "lm_labels": [],
        "human_labels": [],
    }
    if lm is not None:
        record["lm_labels"].append(
            {
                "judge": "J",
                "judge_version": "v1",
                "overall": lm,
                "p_a": p_a,
                "position_consistent": consistent,
            }
        )
    if human is not None:
        record["human_labels"].append({"annotator": "gold", "overall": human})
    return record


@pytest.fixture
def routing_project(db):
    return ProjectFactory(slug="proj", name="Project", labels_per_item=3)


@pytest.fixture
def import_records(write_lines, run_import):
    def load(records, project="proj"):
        result = run_import(write_lines(records), project=project)
        assert result.ok, result.stderr
        return result

    return load
