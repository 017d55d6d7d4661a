"""A stand-in judge model and comparisons whose right answer it knows, for judge-run tests."""

from annotator.models import Comparison, Project
from scoring.judging.backend import OrderScore
from tests.factories import ComparisonFactory


class PrefersGood:
    """A stand-in model: the response containing GOOD wins, with a bias to the first shown."""

    device = "cpu"

    def __init__(self):
        self.calls = 0

    def score(self, inputs):
        self.calls += 1
        out = []
        for item in inputs:
            p = 0.85 if "GOOD" in item.first else 0.25 if "GOOD" in item.second else 0.6
            out.append(OrderScore(item.key, {"A": p, "B": 1 - p}, p, raw={"fake": True}))
        return out

    def close(self):
        pass


def good_answer_comparisons(project: Project, n: int) -> None:
    """Comparisons c0, c1, ...: the GOOD answer is A in the even ones and B in the odd ones."""
    Comparison.objects.bulk_create(
        ComparisonFactory.build(
            project=project,
            external_id=f"c{i}",
            prompt=f"question {i}",
            response_a="GOOD answer" if i % 2 == 0 else "meh",
            response_b="meh" if i % 2 == 0 else "GOOD answer",
        )
        for i in range(n)
    )
