"""The `trl` export: preference pairs for TRL's reward and DPO trainers.

Each line has `prompt`, `chosen`, `rejected`, `external_id`, `label_source`, `strength` and
`agreement`, for every comparison that has a final label (annotator.final_labels: the majority of
its human votes where it has any, else the latest label of the project's primary judge);
comparisons without one are left out.

A batch of comparisons is read with each comparison's human votes as one text and the primary
judge's latest label: on PostgreSQL in one query (string_agg, LATERAL), elsewhere in three
(comparisons, votes, the judge's latest labels). The final label of a comparison with votes comes
from its votes alone, so it is computed once per distinct vote text.
"""

from collections import defaultdict
from collections.abc import Iterator

import orjson
from django.db import connection
from django.db.models import QuerySet

from annotator.dataio.export.batches import comparison_batches, labels_in_batch, rows_fetch
from annotator.dataio.export.confidence import ExportConfidence, posterior_dict
from annotator.dataio.export.snapshot import read_ahead_in_snapshot
from annotator.final_labels import (
    FinalLabel,
    final_label,
    latest_first_sql,
    latest_lm_labels,
    project_primary_judge,
)
from annotator.labels import Choice
from annotator.models import Comparison, HumanLabel, LMLabel, Project

# A batch as read: (comparison id, external id, prompt, A, B, its human votes as one text
# `choice strength,...` or None, the judge's choice, strength and p_a or three None).
Rows = list[tuple]
# What the pairs are made of: (comparison id, external id, prompt, A, B, final label or None).
Finals = list[tuple[int, str, str, str, str, FinalLabel | None]]

# Distinct vote texts whose final label is remembered.
_VOTE_TEXTS_KEPT = 10_000


def one_query_per_batch() -> bool:
    """PostgreSQL reads a batch in one query (string_agg, LATERAL); others in three."""
    return connection.vendor == "postgresql"


def trl_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: ExportConfidence | None
) -> Iterator[bytes]:
    dumps = orjson.dumps
    judge = project_primary_judge(project)
    if one_query_per_batch():
        batches = _sql_batches(comparisons, batch_size, judge)
    else:
        batches = _orm_batches(project, batch_size, comparisons, judge)
    for rows in _with_final_labels(read_ahead_in_snapshot(batches)):
        out = []
        posteriors = confidence.batch(rows) if confidence else {}
        for pk, ext, prompt, a, b, final in rows:
            if final is None:
                continue
            chosen, rejected = (a, b) if final.choice == Choice.A else (b, a)
            line = {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "external_id": ext,
                "label_source": final.source,
                "strength": final.strength,
                "agreement": final.agreement,
            }
            if confidence:
                posterior = posteriors.get(pk)
                value = _label_confidence(final, posterior)
                if not confidence.keeps(value):
                    continue
                line["posterior"] = posterior_dict(posterior)
                line["label_confidence"] = value if value is None else round(value, 4)
            out.append(dumps(line))
        if out:
            yield b"\n".join(out) + b"\n"


def _label_confidence(final: FinalLabel, posterior: list[float] | None) -> float | None:
    """The posterior of the exported preference; for an LM pair the judge's own probability."""
    if final.source == "human":
        return posterior[0 if final.choice == Choice.A else 1] if posterior else None
    if final.p_a is None:
        return None
    return final.p_a if final.choice == Choice.A else 1 - final.p_a


def _with_final_labels(batches: Iterator[Rows]) -> Iterator[Finals]:
    """Each comparison with its final label (annotator.final_labels). With human votes the
    judge's label does not count, so the final label is computed once per distinct vote text: a
    few hundred with three votes per comparison."""
    by_votes: dict[str, FinalLabel | None] = {}
    for rows in batches:
        batch = []
        for pk, ext, prompt, a, b, voted, choice, strength, p_a in rows:
            if voted is None:
                final = final_label((), None if choice is None else (choice, strength, p_a))
            else:
                try:
                    final = by_votes[voted]
                except KeyError:
                    if len(by_votes) >= _VOTE_TEXTS_KEPT:  # memory stays flat
                        by_votes = {}
                    votes = [tuple(vote.split(" ")) for vote in voted.split(",")]
                    final = by_votes[voted] = final_label(votes, None)
            batch.append((pk, ext, prompt, a, b, final))
        yield batch


def _orm_batches(
    project: Project, batch_size: int, comparisons: QuerySet, judge: str | None
) -> Iterator[Rows]:
    """The rows of _sql_batches, in three queries per batch."""
    none = (None, None, None)
    for rows in comparison_batches(comparisons, batch_size, _comparison_select):
        votes, judged = _votes_and_judged(project, judge, rows)
        yield [(*row, votes.get(row[0]), *judged.get(row[0], none)) for row in rows]


def _comparison_select(comparisons: QuerySet) -> QuerySet:
    return comparisons.values_list("id", "external_id", "prompt", "response_a", "response_b")


def _votes_and_judged(
    project: Project, judge: str | None, rows: list[tuple]
) -> tuple[dict[int, str], dict[int, tuple]]:
    """(comparison id -> its human votes as one text, comparison id -> the judge's latest label
    (choice, strength, p_a)) of a batch."""
    votes: dict[int, list[str]] = defaultdict(list)
    for pk, choice, strength in rows_fetch(
        labels_in_batch(HumanLabel, project, rows).values_list(
            "comparison_id", "overall_choice", "overall_strength"
        )
    ):
        votes[pk].append(f"{choice} {strength}")
    judged: dict[int, tuple] = {}
    if judge:
        for pk, *label in rows_fetch(
            latest_lm_labels(labels_in_batch(LMLabel, project, rows).filter(judge_name=judge))
            .order_by()
            .values_list("comparison_id", "choice", "strength", "p_a")
        ):
            judged[pk] = tuple(label)
    return {pk: ",".join(texts) for pk, texts in votes.items()}, judged


def _sql_batches(comparisons: QuerySet, batch_size: int, judge: str | None) -> Iterator[Rows]:
    """Keyset batches of the filtered comparisons as Rows, one query each."""
    table = connection.ops.quote_name(Comparison._meta.db_table)
    votes = (
        "(SELECT string_agg(h.overall_choice || ' ' || h.overall_strength, ',')"
        f" FROM {connection.ops.quote_name(HumanLabel._meta.db_table)} h"
        " WHERE h.comparison_id = c.id)"
    )
    columns = f"c.external_id, c.prompt, c.response_a, c.response_b, {votes}"
    joins, params = "", ()
    if judge:
        columns += ", l.choice, l.strength, l.p_a"
        joins = (
            "LEFT JOIN LATERAL (SELECT choice, strength, p_a"
            f" FROM {connection.ops.quote_name(LMLabel._meta.db_table)}"
            f" WHERE comparison_id = c.id AND judge_name = %s ORDER BY {latest_first_sql()}"
            " LIMIT 1) l ON true"
        )
        params = (judge,)
    else:
        columns += ", NULL, NULL, NULL"
    last = 0
    while True:
        ids = comparisons.filter(id__gt=last).order_by("id").values_list("id")[:batch_size]
        sql, ids_params = ids.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH batch AS MATERIALIZED ({sql}) SELECT c.id, {columns}"
                f" FROM batch JOIN {table} c ON c.id = batch.id {joins} ORDER BY c.id",
                (*ids_params, *params),
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]
