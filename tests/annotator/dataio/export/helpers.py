"""What the export tests share: rows of an export, and a project with every awkward value."""

import orjson

from tests.factories import (
    ComparisonFactory,
    HumanLabelFactory,
    LMLabelFactory,
    PlatformLabelFactory,
)


def exported_rows(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


# Doubles around every switch between written-out digits and exponents (orjson writes 0.00001 and
# 1000000000000000.0 where PostgreSQL prints 1e-05 and 1e+15), integral values, signs, extremes.
AWKWARD_FLOATS = [
    0.0,
    -0.0,
    4.0,
    12.5,
    1 / 3,
    1e-4,
    9.99e-5,
    1e-5,
    1.234e-5,
    9.99e-6,
    1e-6,
    1.5e-7,
    5e-324,
    2.5e-300,
    1e14,
    99999999999999.98,
    1e15,
    1.2345678901234567e15,
    9999999999999998.0,
    1e16,
    1e22,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
]


def awkward_project(project) -> None:
    """Labels with every kind of value the `full` export writes: floats at each formatting
    switch (times and probabilities are never negative), control and non-ASCII characters, JSON
    columns, a platform user, absent aspects."""
    odd = 'quote " backslash \\ tab \t nl \n cr \r \x01 \x1f \x7f é ✓ 😀 \u2028'
    comparison = ComparisonFactory(
        project=project,
        external_id=f"odd {odd}",
        prompt=odd,
        response_a="a",
        response_b="b",
        model_a="m/ä",
        metadata={"nested": {"x": [1, 2.5, None, 1e-7]}, "k": odd},
        gold_choice="tie",
        is_gold=True,
    )
    PlatformLabelFactory(
        comparison=comparison,
        annotator__username="ünïcode-user",
        overall_choice="A",
        overall_strength="slightly",
        harmless_choice="B",
        harmless_strength="clearly",
        reasons=["x", odd],
        rationale=odd,
        shown_order="AB",
        guidelines_version=3,
    )
    for index, seconds in enumerate(AWKWARD_FLOATS):
        HumanLabelFactory(
            comparison=comparison,
            annotator_name=f"h{index}",
            overall_choice="tie",
            confidence="not",
            time_spent_s=seconds,
        )
    for index, p in enumerate([0.0, 1.0, 0.5, 1e-5, 1.5e-7, 5e-324, 0.99999, None]):
        LMLabelFactory(
            comparison=comparison,
            judge_name=f"j{index}",
            choice="B",
            strength="slightly",
            p_a=p,
            p_a_ab=p,
            p_a_ba=None,
            position_consistent=None if p is None else p < 0.5,
            rationale=odd,
            raw_output={"logits": [1.0, -2.5e-8], "text": odd},
        )
    ComparisonFactory(
        project=project,
        external_id="plain",
        human_votes=[("A", "clearly")],
        lm_votes=[("j0", "tie")],
    )
    ComparisonFactory(project=project, external_id="unlabelled")
