"""Preference pairs: each exported comparison with the label that decides its chosen and
rejected response. The `trl`, `parquet` and `hf` exports are written from these.

Which label decides (`source`):

- `final` (the default): the final label (annotator.final_labels): the majority of the human
  votes where the comparison has any, else the primary judge's latest label;
- `human`: the majority of the human votes only;
- `lm`: the primary judge's latest label only, even where humans voted.

A comparison that the source gives no label (a tied vote or a Tie majority, an LM Tie, no label)
is left out. Whatever decides, `agreement` is the share of the comparison's human votes that went
to their most common overall choice (None without votes): the figure `min_agreement` filters on.

A batch of comparisons is read with each comparison's human votes as one text and the primary
judge's latest label: on PostgreSQL in one query (string_agg, LATERAL), elsewhere in three
(comparisons, votes, the judge's latest labels). The human side of a comparison depends on its
votes alone, so it is computed once per distinct vote text.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from django.db import connection
from django.db.models import Q, QuerySet

from annotator.dataio.export.batches import comparison_batches, labels_in_batch, rows_fetch
from annotator.dataio.export.snapshot import read_ahead_in_snapshot
from annotator.final_labels import (
    FinalLabel,
    final_label,
    latest_first_sql,
    latest_lm_labels,
    project_primary_judge,
)
from annotator.labels import Strength
from annotator.models import Comparison, HumanLabel, LMLabel, Project

SOURCES = ("final", "human", "lm")
CONVERSATIONAL = ("auto", "always", "never")
# What `--margin` writes, for TRL's RewardTrainer (loss -log sigmoid(r_chosen - r_rejected -
# margin)): a clear preference asks for a wider reward gap than a slight one; a preference of
# unknown strength asks for none beyond the order. Ties are never exported.
MARGINS = {Strength.CLEARLY: 1.0, Strength.SLIGHTLY: 0.5, Strength.UNKNOWN: 0.0}
# The conversation columns (JSON lists of {"role", "content"}, NULL where the text was plain).
MESSAGE_FIELDS = ("prompt_messages", "response_a_messages", "response_b_messages")

# Distinct vote texts whose human side is remembered.
_VOTE_TEXTS_KEPT = 10_000


class Pair(NamedTuple):
    pk: int
    external_id: str
    prompt: str
    response_a: str
    response_b: str
    extra: tuple  # the values of the further comparison fields asked for, in their order
    label: FinalLabel  # the label that decides: choice A or B, its strength and source
    agreement: float | None  # share of the human votes for their most common choice
    n_human: int  # human votes
    judge_p_a: float | None  # the primary judge's latest probability that A is better


class _Humans(NamedTuple):
    majority: FinalLabel | None
    agreement: float | None
    n: int


_NO_HUMANS = _Humans(None, None, 0)


def one_query_per_batch() -> bool:
    """PostgreSQL reads a batch in one query (string_agg, LATERAL); others in three."""
    return connection.vendor == "postgresql"


def conversational_export(comparisons: QuerySet, mode: str) -> bool:
    """Whether the export is written as conversations: `always`; `never`; `auto` when any of
    the exported comparisons has messages (one query). A file is one shape or the other: a
    column of strings mixed with lists of messages loads in neither `datasets` nor TRL."""
    if mode not in CONVERSATIONAL:
        raise ValueError(
            f"unknown conversational mode {mode!r}; expected one of {', '.join(CONVERSATIONAL)}"
        )
    if mode != "auto":
        return mode == "always"
    has_messages = Q()
    for name in MESSAGE_FIELDS:
        has_messages |= Q(**{f"{name}__isnull": False})
    return comparisons.filter(has_messages).exists()


def pair_batches(
    project: Project,
    batch_size: int,
    comparisons: QuerySet,
    *,
    source: str = "final",
    fields: tuple[str, ...] = (),
) -> Iterator[list[Pair]]:
    """The pairs of each keyset batch of `comparisons` (a batch without any is an empty list),
    read in the export's snapshot; `fields` are further Comparison fields, in Pair.extra."""
    if source not in SOURCES:
        raise ValueError(f"unknown label source {source!r}; expected one of {', '.join(SOURCES)}")
    judge = project_primary_judge(project)
    if one_query_per_batch():
        batches = _sql_batches(comparisons, batch_size, judge, fields)
    else:
        batches = _orm_batches(project, batch_size, comparisons, judge, fields)
    judge_decides, judge_decides_unvoted = source == "lm", source == "final"
    make = tuple.__new__  # a Pair without NamedTuple's slower keyword-checking constructor
    humans_of: dict[str, _Humans] = {}
    for rows in read_ahead_in_snapshot(batches):
        pairs = []
        for row in rows:
            # No allocation without extra fields: a whole tuple's slice is itself, the rest ().
            pk, ext, prompt, a, b, voted, choice, strength, p_a = row[:9]
            extra = row[9:]
            if voted is None:
                humans = _NO_HUMANS
            else:
                humans = humans_of.get(voted)
                if humans is None:
                    if len(humans_of) >= _VOTE_TEXTS_KEPT:  # memory stays flat
                        humans_of = {}
                    humans = humans_of[voted] = _humans(voted)
            if judge_decides or (judge_decides_unvoted and not humans.n):
                label = final_label((), None if choice is None else (choice, strength, p_a))
            else:
                label = humans.majority
            if label is not None:
                values = (pk, ext, prompt, a, b, extra, label, humans.agreement, humans.n, p_a)
                pairs.append(make(Pair, values))
        yield pairs


def _humans(voted: str) -> _Humans:
    """The human side of a comparison from its votes as one text (`choice strength,...`)."""
    votes = [tuple(vote.split(" ")) for vote in voted.split(",")]
    top = Counter(choice for choice, _ in votes).most_common(1)[0][1]
    return _Humans(final_label(votes, None), round(top / len(votes), 4), len(votes))


def _orm_batches(
    project: Project, batch_size: int, comparisons: QuerySet, judge: str | None, fields: tuple
) -> Iterator[list[tuple]]:
    """The rows of _sql_batches, in three queries per batch."""
    none = (None, None, None)

    def select(rows: QuerySet) -> QuerySet:
        return rows.values_list("id", "external_id", "prompt", "response_a", "response_b", *fields)

    for rows in comparison_batches(comparisons, batch_size, select, json_fragments=False):
        votes, judged = _votes_and_judged(project, judge, rows)
        yield [(*row[:5], votes.get(row[0]), *judged.get(row[0], none), *row[5:]) for row in rows]


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


def _sql_batches(
    comparisons: QuerySet, batch_size: int, judge: str | None, fields: tuple
) -> Iterator[list[tuple]]:
    """Keyset batches of the filtered comparisons, one query each: (id, external id, prompt, A,
    B, the human votes as one text or None, the judge's choice, strength and p_a or three None,
    *fields). JSON columns come as their text."""
    quote = connection.ops.quote_name
    table = quote(Comparison._meta.db_table)
    votes = (
        "(SELECT string_agg(h.overall_choice || ' ' || h.overall_strength, ',')"
        f" FROM {quote(HumanLabel._meta.db_table)} h WHERE h.comparison_id = c.id)"
    )

    def named(names) -> str:
        return "".join(f", c.{quote(Comparison._meta.get_field(n).column)}" for n in names)

    columns = f"{named(('external_id', 'prompt', 'response_a', 'response_b'))[2:]}, {votes}"
    joins, params = "", ()
    if judge:
        columns += ", l.choice, l.strength, l.p_a"
        joins = (
            "LEFT JOIN LATERAL (SELECT choice, strength, p_a"
            f" FROM {quote(LMLabel._meta.db_table)}"
            f" WHERE comparison_id = c.id AND judge_name = %s ORDER BY {latest_first_sql()}"
            " LIMIT 1) l ON true"
        )
        params = (judge,)
    else:
        columns += ", NULL, NULL, NULL"
    columns += named(fields)
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
