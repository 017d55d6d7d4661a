"""Streaming exports: JSON Lines, one comparison per line, memory flat in the project's size.

Comparisons are read in keyset-paginated batches (id > last, ordered by id) and their labels with
one query per batch and label kind, so a million-row export never holds more than one batch.

- `full`: the native import format with every label; `export -> import` into a new project and
  export again gives the same bytes (platform labels come back as imported ones, by annotator name).
- `trl`: `prompt`, `chosen`, `rejected` plus `external_id`, `label_source`, `strength`,
  `agreement` for every comparison that has a final label: the majority of its human labels if it
  has any (a tied vote or a Tie majority gives no pair), else its LM label from the project's
  primary judge (its latest version); ties are dropped.

With `with_confidence`, each line also has `posterior` (the Dawid-Skene posterior over A / B /
tie from the project's cached analytics, null for a comparison without human labels) and
`label_confidence` (trl: the posterior of the exported preference, or the primary judge's own
probability for an LM pair; full: the largest posterior). `min_confidence` keeps only lines whose
label_confidence is known and at least that. The posteriors are read once from the cache, keyed
by comparison id (a sorted id array looked up per batch).
"""

from collections import Counter, defaultdict
from collections.abc import Iterator

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Count, F, Func, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from orjson import Fragment

from annotator.dataio.readahead import read_ahead
from annotator.labels import ALL_ASPECTS, Choice, Strength, label_format
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
# When the winning votes disagree on strength, the weaker claim wins.
_STRENGTH_RANK = {Strength.SLIGHTLY: 0, Strength.CLEARLY: 1, Strength.UNKNOWN: 2}


def dataset_export_lines(
    *,
    project: Project,
    kind: str = "full",
    batch_size: int | None = None,
    comparisons: QuerySet | None = None,
    with_confidence: bool = False,
    min_confidence: float | None = None,
) -> Iterator[bytes]:
    """Yield the export of `project` as JSON Lines, in newline-terminated chunks of bytes.

    `comparisons` narrows the export to a filtered queryset of the project's comparisons (the
    REST API's filters); it is read in the same keyset batches.
    """
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export kind {kind!r}; expected one of {', '.join(EXPORT_KINDS)}")
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    if comparisons is None:
        comparisons = Comparison.objects.all()
    comparisons = comparisons.filter(project=project)
    confidence = _Confidence.load(project, with_confidence, min_confidence)
    if kind == "full":
        return _full_lines(project, batch_size, comparisons, confidence)
    return _trl_lines(project, batch_size, comparisons, confidence)


class _Confidence:
    """The optional `posterior` / `label_confidence` fields and the `min_confidence` filter."""

    def __init__(self, posteriors, minimum: float | None):
        self.posteriors, self.minimum = posteriors, minimum

    @classmethod
    def load(cls, project: Project, wanted: bool, minimum: float | None):
        if not wanted and minimum is None:
            return None
        from annotator.analytics.report import project_posteriors

        posteriors, _ = project_posteriors(project=project)
        if posteriors is None:
            raise ValueError(
                f"project {project.slug!r} has no analytics report yet "
                "(run `manage.py project_report` first)"
            )
        return cls(posteriors, minimum)

    def batch(self, rows: list[tuple]) -> dict[int, list[float]]:
        """comparison id -> its posterior [A, B, tie], for the batch's comparisons that have one."""
        ids = [row[0] for row in rows]
        found = self.posteriors.lookup(ids)
        return {
            pk: [round(float(p), 4) for p in probabilities]
            for pk, probabilities in zip(ids, found, strict=True)
            if probabilities[0] == probabilities[0]  # not NaN
        }

    def keeps(self, value: float | None) -> bool:
        return self.minimum is None or (value is not None and value >= self.minimum)


def _posterior_dict(posterior: list[float] | None) -> dict | None:
    if posterior is None:
        return None
    return {"A": posterior[0], "B": posterior[1], "tie": posterior[2]}


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


def _comparison_batches(comparisons: QuerySet, batch_size: int) -> Iterator[list[tuple]]:
    last = 0
    while True:
        rows = _fetch(
            comparisons.filter(id__gt=last)
            .order_by("id")
            .values_list(*_COMPARISON_FIELDS)[:batch_size]
        )
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _in_batch(model, project: Project, rows: list[tuple]):
    """Labels of the batch's comparisons: an id range, restricted to the project's own ids.

    The range on both sides lets PostgreSQL merge two index range scans; a plain join on the
    project would scan every comparison of the project for each batch.
    """
    low, high = rows[0][0], rows[-1][0]
    ours = Comparison.objects.filter(project=project, id__gte=low, id__lte=high).values("id")
    return model.objects.filter(
        comparison_id__gte=low, comparison_id__lte=high, comparison_id__in=ours
    ).order_by("comparison_id", "id")


# (choice, strength) -> label text, "not asked" (None, None) -> None: one lookup per judgement.
_LABEL_TEXT = {
    (choice, strength): label_format(choice, strength)
    for choice in Choice.values
    for strength in Strength.values
    if choice != Choice.TIE or strength == Strength.UNKNOWN
} | {(None, None): None}


# Columns read per label, then the export keys in output order (judgements are two columns each).
_HUMAN_COLUMNS = {
    "annotator": Coalesce(NullIf("annotator_name", Value("")), "annotator__username"),
    "annotator_type": F("annotator_type"),
    **{
        f"{aspect}_{part}": F(f"{aspect}_{part}")
        for aspect in ALL_ASPECTS
        for part in ("choice", "strength")
    },
    "confidence": F("confidence"),
    "reasons": F("reasons"),
    "rationale": F("rationale"),
    "time_spent_s": F("time_spent_s"),
    "shown_order": F("shown_order"),
    "guidelines_version": F("guidelines_version"),
    "source": F("source"),
    "created_at": IsoTimestamp("created_at"),
}
_LM_COLUMNS = {
    "judge": F("judge_name"),
    "judge_version": F("judge_version"),
    "overall_choice": F("choice"),
    "overall_strength": F("strength"),
    "p_a": F("p_a"),
    "p_a_ab": F("p_a_ab"),
    "p_a_ba": F("p_a_ba"),
    "position_consistent": F("position_consistent"),
    "rationale": F("rationale"),
    "raw_output": F("raw_output"),
    "truncated": F("truncated"),
    "source": F("source"),
    "created_at": IsoTimestamp("created_at"),
}


def _human_label(row: tuple, text=_LABEL_TEXT) -> dict:
    (_, who, kind, oc, os_, hc, hs, tc, ts, xc, xs, confidence, reasons, *rest) = row
    rationale, seconds, shown, version, source, created = rest
    return {
        "annotator": who,
        "annotator_type": kind,
        "overall": text[oc, os_],
        "helpful": text[hc, hs],
        "truthful": text[tc, ts],
        "harmless": text[xc, xs],
        "confidence": confidence,
        "reasons": Fragment(reasons),
        "rationale": rationale,
        "time_spent_s": seconds,
        "shown_order": shown,
        "guidelines_version": version,
        "source": source,
        "created_at": created,
    }


def _lm_label(row: tuple, text=_LABEL_TEXT) -> dict:
    (_, judge, version, choice, strength, p_a, p_ab, p_ba, consistent, *rest) = row
    rationale, raw, truncated, source, created = rest
    return {
        "judge": judge,
        "judge_version": version,
        "overall": text[choice, strength],
        "p_a": p_a,
        "p_a_ab": p_ab,
        "p_a_ba": p_ba,
        # SQLite returns 0/1
        "position_consistent": consistent if consistent is None else bool(consistent),
        "rationale": rationale,
        "raw_output": Fragment(raw),
        "truncated": bool(truncated),
        "source": source,
        "created_at": created,
    }


def _label_dicts(queryset, columns: dict, to_dict) -> dict[int, list[dict]]:
    """comparison id -> its labels as export dicts, in id order."""
    aliases = {f"export_{key}": expression for key, expression in columns.items()}
    groups: dict[int, list[dict]] = defaultdict(list)
    for row in _fetch(queryset.annotate(**aliases).values_list("comparison_id", *aliases)):
        groups[row[0]].append(to_dict(row))
    return groups


def _judgement(choice: str | None, strength: str | None) -> str | None:
    return None if choice is None else label_format(choice, strength)


def _read_batches(comparisons: QuerySet, batch_size: int, fetch_labels) -> Iterator[tuple]:
    """(comparison rows, fetch_labels(rows)) per batch; in a reader thread when possible.

    Outside a transaction, a thread reads the next batch on its own connection, in one read-only
    snapshot, while this thread turns the current one into JSON. Inside a transaction (a caller's
    atomic block, a test) the caller's connection must do the reading, so it runs inline.
    """
    batches = ((rows, fetch_labels(rows)) for rows in _comparison_batches(comparisons, batch_size))
    if connection.in_atomic_block:
        return batches
    return read_ahead(_in_snapshot(batches), name="export-reader")


def _in_snapshot(batches: Iterator[tuple]) -> Iterator[tuple]:
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield from batches
    finally:
        connection.close()  # this thread's own connection


def _full_labels(project: Project):
    def fetch(rows: list[tuple]) -> tuple[dict, dict]:
        return (
            _label_dicts(_in_batch(HumanLabel, project, rows), _HUMAN_COLUMNS, _human_label),
            _label_dicts(_in_batch(LMLabel, project, rows), _LM_COLUMNS, _lm_label),
        )

    return fetch


def _full_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: _Confidence | None
) -> Iterator[bytes]:
    dumps = orjson.dumps
    for rows, (humans, lms) in _read_batches(comparisons, batch_size, _full_labels(project)):
        out = []
        posteriors = confidence.batch(rows) if confidence else {}
        for pk, ext, prompt, a, b, model_a, model_b, metadata, route, gold in rows:
            record = {
                "external_id": ext,
                "prompt": prompt,
                "response_a": a,
                "response_b": b,
                "model_a": model_a,
                "model_b": model_b,
                "metadata": Fragment(metadata),
                "route": route,
                "gold": _judgement(gold, Strength.UNKNOWN),
                "human_labels": humans.get(pk, []),
                "lm_labels": lms.get(pk, []),
            }
            if confidence:
                posterior = posteriors.get(pk)
                value = max(posterior) if posterior else None
                if not confidence.keeps(value):
                    continue
                record["posterior"] = _posterior_dict(posterior)
                record["label_confidence"] = value
            out.append(dumps(record))
        if out:
            yield b"\n".join(out) + b"\n"


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


def _trl_labels(project: Project, judge: str | None):
    def fetch(rows: list[tuple]) -> tuple[dict, dict]:
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
            for row in _fetch(
                _in_batch(LMLabel, project, rows)
                .filter(judge_name=judge)
                .values_list("comparison_id", "choice", "strength", "p_a")
            ):
                lm[row[0]] = row
        return humans, lm

    return fetch


def _trl_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: _Confidence | None
) -> Iterator[bytes]:
    dumps = orjson.dumps
    fetch = _trl_labels(project, project_primary_judge(project))
    for rows, (humans, lm) in _read_batches(comparisons, batch_size, fetch):
        out = []
        posteriors = confidence.batch(rows) if confidence else {}
        for pk, ext, prompt, a, b, *_ in rows:
            votes = humans.get(pk)
            if votes:
                majority = human_majority([(v[1], v[2]) for v in votes])
                if majority is None:
                    continue
                choice, strength, agreement = majority
                source = "human"
            elif pk in lm and lm[pk][1] != Choice.TIE:
                _, choice, strength, p_a = lm[pk]
                agreement, source = None, "lm"
            else:
                continue
            chosen, rejected = (a, b) if choice == Choice.A else (b, a)
            line = {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "external_id": ext,
                "label_source": source,
                "strength": strength,
                "agreement": agreement,
            }
            if confidence:
                posterior = posteriors.get(pk)
                if source == "human":
                    value = posterior[0 if choice == Choice.A else 1] if posterior else None
                else:  # the judge's own probability of its verdict
                    value = None if p_a is None else (p_a if choice == Choice.A else 1 - p_a)
                if not confidence.keeps(value):
                    continue
                line["posterior"] = _posterior_dict(posterior)
                line["label_confidence"] = value if value is None else round(value, 4)
            out.append(dumps(line))
        if out:
            yield b"\n".join(out) + b"\n"
