"""`ultrafeedback`: raw openbmb/UltraFeedback, an instruction and four completions each rated by
GPT-4 on four aspects; pairs of completions chosen by `--pairing`, labelled by the ratings.

A completion's score is the mean of its aspect ratings (1-5; `N/A` or a missing aspect is left
out of the mean): the published `overall_score` is a separate critique score with a known defect
(some 1s stored as 10) and `fine-grained_score` (the same mean) is not in every copy. A completion
with no rating takes part in no pair. The label is an LM label of the GPT-4 judge (default
`ultrafeedback-gpt-4`, `--label-source lm:NAME` renames it): with gap = score(A) - score(B),
`p_a = 1 / (1 + e^-gap)`, a tie with p_a 0.5 at equal scores, `slightly` below a gap of 1 and
`clearly` from it. The A/B order is drawn from the pair's id.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, chosen_is_b, json_objects
from annotator.dataio.formats.dataset_fields import (
    gap_label,
    kind,
    list_read,
    logistic,
    others,
    text_read,
)
from annotator.dataio.formats.pairing import group_key, pairs_select
from annotator.dataio.records import FieldError

ULTRAFEEDBACK_JUDGE = "ultrafeedback-gpt-4"
ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
_USED = frozenset({"instruction", "completions"})
_NOT_RATED = "completions without any aspect rating (in no pair)"
_TOO_FEW = "instructions with fewer than two rated completions (no pair)"


@dataclass(slots=True)
class Completion:
    index: int  # its place in `completions`, part of the pair's id
    model: str
    response: str
    ratings: dict[str, int | None]
    extra: dict  # principle, system prompt and the published scores, for metadata
    raw: dict  # the GPT-4 annotations (and critique), for the label's raw output

    @property
    def score(self) -> float | None:
        given = [r for r in self.ratings.values() if r is not None]
        return sum(given) / len(given) if given else None


def rating_parse(value: Any) -> int | None:
    """A rating as published ("1".."5", sometimes a number) or None for "N/A"; ValueError
    otherwise."""
    if value is None or (isinstance(value, str) and value.strip().upper() == "N/A"):
        return None
    number = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 5:
        return number
    raise ValueError(f"{value!r} is not a rating 1-5 or N/A")


def _ratings(annotations: Any, where: str, errors: list[FieldError]) -> dict[str, int | None]:
    if annotations is None:
        return dict.fromkeys(ASPECTS)
    if not isinstance(annotations, dict):
        errors.append(FieldError(where, f"must be an object, not {kind(annotations)}"))
        return {}
    ratings: dict[str, int | None] = {}
    for aspect in ASPECTS:
        entry = annotations.get(aspect)
        if entry is not None and not isinstance(entry, dict):
            errors.append(FieldError(f"{where}.{aspect}", f"must be an object, not {kind(entry)}"))
            continue
        try:
            ratings[aspect] = rating_parse((entry or {}).get("Rating"))
        except ValueError as exc:
            errors.append(FieldError(f"{where}.{aspect}.Rating", str(exc)))
    return ratings


def completion_parse(value: Any, index: int, errors: list[FieldError]) -> Completion | None:
    where = f"completions[{index}]"
    if not isinstance(value, dict):
        errors.append(FieldError(where, f"must be an object, not {kind(value)}"))
        return None
    before = len(errors)
    response = text_read(value, "response", errors, where=f"{where}.response")
    model = value.get("model") or ""
    if not isinstance(model, str):
        errors.append(FieldError(f"{where}.model", f"must be a string, not {kind(model)}"))
    ratings = _ratings(value.get("annotations"), f"{where}.annotations", errors)
    if len(errors) > before:
        return None
    extra = {
        k: value[k]
        for k in ("principle", "custom_system_prompt", "overall_score", "fine-grained_score")
        if k in value
    }
    raw = {k: value[k] for k in ("annotations", "critique") if k in value}
    return Completion(index, model, response, ratings, extra, raw)


def _rationale(side: str, completion: Completion) -> list[str]:
    lines = []
    for aspect in ASPECTS:
        entry = (completion.raw.get("annotations") or {}).get(aspect) or {}
        why = entry.get("Rationale For Rating") or entry.get("Rationale") or ""
        lines.append(f"{side} {aspect} {entry.get('Rating', 'N/A')}: {why}".rstrip())
    return lines


def pair_native(
    instruction: str, key: str, first: Completion, second: Completion, meta: dict, judge: str
) -> dict:
    """One pair as a native record with its LM label (A/B drawn from the pair's id)."""
    external_id = f"uf-{key}-{first.index}-{second.index}"
    a, b = (second, first) if chosen_is_b(external_id) else (first, second)
    gap = a.score - b.score
    return {
        "external_id": external_id,
        "prompt": instruction,
        "response_a": a.response,
        "response_b": b.response,
        "model_a": a.model,
        "model_b": b.model,
        "metadata": {
            **meta,
            "completion_a": {"index": a.index, "ratings": a.ratings, "score": a.score, **a.extra},
            "completion_b": {"index": b.index, "ratings": b.ratings, "score": b.score, **b.extra},
        },
        "lm_labels": [
            {
                "judge": judge,
                "judge_version": "mean-of-aspect-ratings",
                "overall": gap_label(gap, clear_at=1),
                "p_a": logistic(gap),
                "rationale": "\n".join(_rationale("A", a) + _rationale("B", b)),
                "raw_output": {"a": a.raw, "b": b.raw},
            }
        ],
    }


def read_ultrafeedback(
    stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
) -> Iterator[Parsed]:
    judge = options.lm_judge or ULTRAFEEDBACK_JUDGE
    counts = options.report.counts
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors: list[FieldError] = []
        instruction = text_read(obj, "instruction", errors)
        items = list_read(obj, "completions", errors) or []
        completions = [completion_parse(c, i, errors) for i, c in enumerate(items)]
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        rated = [c for c in completions if c.score is not None]
        counts[_NOT_RATED] += len(completions) - len(rated)
        if len(rated) < 2:
            counts[_TOO_FEW] += 1
            continue
        key = group_key(instruction, [c.response for c in completions])
        meta = others(obj, _USED)
        chosen = pairs_select(
            [c.score for c in rated], pairing=options.pairing, seed=options.pairing_seed, key=key
        )
        for i, j in chosen:
            yield Parsed(
                source, number, pair_native(instruction, key, rated[i], rated[j], meta, judge)
            )


FORMAT = Format(
    name="ultrafeedback",
    read=read_ultrafeedback,
    keys=frozenset({"source", "instruction", "models", "completions"}),
    summary=(
        "openbmb/UltraFeedback (raw): pairs of completions by --pairing, labelled by GPT-4's "
        "aspect ratings (an LM label)"
    ),
)
