"""Streaming exports: JSON Lines, one comparison per line, memory flat in the project's size.

Comparisons are read in keyset-paginated batches (id > last, ordered by id) and their labels with
one query per batch and label kind, so a million-row export never holds more than one batch.

- `full`: the native import format with every label; `export -> import` into a new project and
  export again gives the same bytes (platform labels come back as imported ones, by annotator name).
- `trl`: `prompt`, `chosen`, `rejected` plus `external_id`, `label_source`, `strength`,
  `agreement` for every comparison that has a final label: the majority of its human labels if it
  has any (a tied vote or a Tie majority gives no pair), else its LM label from the project's
  primary judge (its latest version); ties are dropped.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import CharField, Count, Func
from orjson import Fragment

from annotator.labels import ASPECTS, Choice, Strength, label_format
from annotator.models import Comparison, HumanLabel, Project
from scoring.models import LMLabel

EXPORT_KINDS = ("full", "trl")

_COMPARISON_FIELDS = (
    "id",
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "model_a",
    "model_b",
    "metadata",
    "route",
    "gold_choice",
)
_HUMAN_FIELDS = (
    "comparison_id",
    "annotator_name",
    "annotator__username",
    "annotator_type",
    "overall_choice",
    "overall_strength",
    *(f"{a}_{part}" for a in ASPECTS for part in ("choice", "strength")),
    "confidence",
    "reasons",
    "rationale",
    "time_spent_s",
    "shown_order",
    "guidelines_version",
    "source",
    "created_at",
)
_LM_FIELDS = (
    "comparison_id",
    "judge_name",
    "judge_version",
    "choice",
    "strength",
    "p_a",
    "p_a_ab",
    "p_a_ba",
    "position_consistent",
    "rationale",
    "raw_output",
    "source",
    "created_at",
)
# When the winning votes disagree on strength, the weaker claim wins.
_STRENGTH_RANK = {Strength.SLIGHTLY: 0, Strength.CLEARLY: 1, Strength.UNKNOWN: 2}


def dataset_export_lines(
    *, project: Project, kind: str = "full", batch_size: int | None = None
) -> Iterator[bytes]:
    """Yield the export of `project` as JSON Lines, in newline-terminated chunks of bytes."""
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export kind {kind!r}; expected one of {', '.join(EXPORT_KINDS)}")
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    if kind == "full":
        return _full_lines(project, batch_size)
    return _trl_lines(project, batch_size)


def project_primary_judge(project: Project) -> str | None:
    """The project's primary judge; unset, the judge with the most labels in the project."""
    if project.primary_judge:
        return project.primary_judge
    top = (
        LMLabel.objects.filter(comparison__project=project)
        .values("judge_name")
        .annotate(n=Count("id"))
        .order_by("-n", "judge_name")
        .first()
    )
    return top["judge_name"] if top else None


class IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database (no Python parsing)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        template = (
            "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        template = "replace(%(expressions)s, ' ', 'T') || '+00:00'"
        return self.as_sql(compiler, connection, template=template, **extra)


def _fetch(queryset) -> list[tuple]:
    """Rows as the driver returns them, skipping the ORM's per-value converters.

    JSON columns come back as their text, which is embedded as it is (orjson.Fragment);
    timestamps come back formatted by IsoTimestamp. This is what makes exports fast.
    """
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _comparison_batches(project: Project, batch_size: int) -> Iterator[list[tuple]]:
    last = 0
    while True:
        rows = _fetch(
            Comparison.objects.filter(project=project, id__gt=last)
            .order_by("id")
            .values_list(*_COMPARISON_FIELDS)[:batch_size]
        )
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _in_batch(model, project: Project, rows: list[tuple]):
    return model.objects.filter(
        comparison__project=project, comparison_id__gte=rows[0][0], comparison_id__lte=rows[-1][0]
    ).order_by("comparison_id", "id")


def _grouped(queryset, fields: tuple[str, ...]) -> dict[int, list[tuple]]:
    groups: dict[int, list[tuple]] = defaultdict(list)
    queryset = queryset.annotate(created_iso=IsoTimestamp("created_at"))
    fields = tuple("created_iso" if f == "created_at" else f for f in fields)
    for row in _fetch(queryset.values_list(*fields)):
        groups[row[0]].append(row)
    return groups


def _json(text: str | bytes | None) -> Fragment | None:
    return None if text is None else Fragment(text)


def _bool(value) -> bool | None:
    return None if value is None else bool(value)  # SQLite returns 0/1


def _judgement(choice: str | None, strength: str | None) -> str | None:
    return None if choice is None else label_format(choice, strength)


def _full_lines(project: Project, batch_size: int) -> Iterator[bytes]:
    dumps = orjson.dumps
    for rows in _comparison_batches(project, batch_size):
        humans = _grouped(_in_batch(HumanLabel, project, rows), _HUMAN_FIELDS)
        lms = _grouped(_in_batch(LMLabel, project, rows), _LM_FIELDS)
        out = []
        for pk, ext, prompt, a, b, model_a, model_b, metadata, route, gold in rows:
            record = {
                "external_id": ext,
                "prompt": prompt,
                "response_a": a,
                "response_b": b,
                "model_a": model_a,
                "model_b": model_b,
                "metadata": _json(metadata),
                "route": route,
                "gold": _judgement(gold, Strength.UNKNOWN),
                "human_labels": [_human_dict(h) for h in humans.get(pk, ())],
                "lm_labels": [_lm_dict(m) for m in lms.get(pk, ())],
            }
            out.append(dumps(record))
        yield b"\n".join(out) + b"\n"


def _human_dict(row: tuple) -> dict:
    (_, name, username, annotator_type, overall_c, overall_s, *rest) = row
    aspects = {}
    for index, aspect in enumerate(ASPECTS):
        aspects[aspect] = _judgement(rest[2 * index], rest[2 * index + 1])
    (confidence, reasons, rationale, seconds, shown, version, source, created) = rest[
        2 * len(ASPECTS) :
    ]
    return {
        "annotator": name or username,
        "annotator_type": annotator_type,
        "overall": label_format(overall_c, overall_s),
        **aspects,
        "confidence": confidence,
        "reasons": _json(reasons),
        "rationale": rationale,
        "time_spent_s": seconds,
        "shown_order": shown,
        "guidelines_version": version,
        "source": source,
        "created_at": created,
    }


def _lm_dict(row: tuple) -> dict:
    (_, judge, version, choice, strength, p_a, p_ab, p_ba, consistent, why, raw, source, at) = row
    return {
        "judge": judge,
        "judge_version": version,
        "overall": label_format(choice, strength),
        "p_a": p_a,
        "p_a_ab": p_ab,
        "p_a_ba": p_ba,
        "position_consistent": _bool(consistent),
        "rationale": why,
        "raw_output": _json(raw),
        "source": source,
        "created_at": at,
    }


def human_majority(votes: list[tuple[str, str]]) -> tuple[str, str, float] | None:
    """(choice, strength, agreement) of the human majority, or None for a tied vote or a tie.

    `votes` are (choice, strength) pairs; agreement is the share of votes for the winner.
    """
    if not votes:
        return None
    counts = Counter(choice for choice, _ in votes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    winner, n = counts[0]
    if winner == Choice.TIE:
        return None
    strengths = Counter(strength for choice, strength in votes if choice == winner)
    strength = min(strengths, key=lambda s: (-strengths[s], _STRENGTH_RANK[s]))
    return winner, strength, round(n / len(votes), 4)


def _trl_lines(project: Project, batch_size: int) -> Iterator[bytes]:
    dumps = orjson.dumps
    judge = project_primary_judge(project)
    for rows in _comparison_batches(project, batch_size):
        humans: dict[int, list[tuple]] = defaultdict(list)
        for row in _fetch(
            _in_batch(HumanLabel, project, rows).values_list(
                "comparison_id", "overall_choice", "overall_strength"
            )
        ):
            humans[row[0]].append(row)
        lm: dict[int, tuple] = {}
        if judge:
            # Ordered by id: the latest label of the judge wins when it has several versions.
            for row in (
                _in_batch(LMLabel, project, rows)
                .filter(judge_name=judge)
                .values_list("comparison_id", "choice", "strength")
            ):
                lm[row[0]] = row
        out = []
        for pk, ext, prompt, a, b, *_ in rows:
            votes = humans.get(pk)
            if votes:
                majority = human_majority([(v[1], v[2]) for v in votes])
                if majority is None:
                    continue
                choice, strength, agreement = majority
                source = "human"
            elif pk in lm and lm[pk][1] != Choice.TIE:
                _, choice, strength = lm[pk]
                agreement, source = None, "lm"
            else:
                continue
            chosen, rejected = (a, b) if choice == Choice.A else (b, a)
            out.append(
                dumps(
                    {
                        "prompt": prompt,
                        "chosen": chosen,
                        "rejected": rejected,
                        "external_id": ext,
                        "label_source": source,
                        "strength": strength,
                        "agreement": agreement,
                    }
                )
            )
        if out:
            yield b"\n".join(out) + b"\n"
