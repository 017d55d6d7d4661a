"""A comparison's final label, the one rule every reader of labels follows.

The final label of a comparison is the majority of its human votes where it has any (a tied vote
or a Tie majority gives none), else the latest label of the project's primary judge (a Tie gives
none). The TRL export, reward-model training, routing, analytics and the judge report all read
labels through this module, so they agree on every comparison.

"The latest label of a judge" is the judge's label with the latest `created_at`, then the highest
id: a judge that labelled a comparison in several versions counts once, with its most recent
verdict. Imported labels keep the time they were made, so insertion order (the id) alone would
let an old imported verdict hide a newer one.
"""

from collections import Counter
from typing import NamedTuple

from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from annotator.labels import Choice, Strength

# The models are imported where they are queried: the rule itself (`final_label`) needs no
# configured Django, so the trainer's data module can use it anywhere.

# The one ordering of a judge's labels of a comparison: the latest first.
LATEST_FIRST = ("-created_at", "-id")

# When the winning votes disagree on strength, the weaker claim wins.
_STRENGTH_RANK = {Strength.SLIGHTLY: 0, Strength.CLEARLY: 1, Strength.UNKNOWN: 2}


class FinalLabel(NamedTuple):
    choice: str  # A or B: a final label is never a tie
    strength: str
    source: str  # "human" or "lm"
    agreement: float | None  # share of the human votes for the winner; None for an LM label
    p_a: float | None  # the judge's probability that A is better; None for a human label


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


def final_label(
    votes: list[tuple[str, str]], lm: tuple[str, str, float | None] | None
) -> FinalLabel | None:
    """The final label from a comparison's human votes and its primary judge's latest label
    (choice, strength, p_a), or None where there is none."""
    if votes:
        found = human_majority(votes)
        if found is None:
            return None
        choice, strength, agreement = found
        return FinalLabel(choice, strength, "human", agreement, None)
    if lm is None or lm[0] == Choice.TIE:
        return None
    choice, strength, p_a = lm
    return FinalLabel(choice, strength, "lm", None, p_a)


# Judges whose labels derive from the project's own labels (its reward model, trained on them):
# never the primary judge by count, though a project may name one. The apps above register
# theirs in AppConfig.ready(); the base app knows no name.
_DERIVED_JUDGES: set[str] = set()


def derived_judge_register(name: str) -> None:
    _DERIVED_JUDGES.add(name)


def project_primary_judge(project) -> str | None:
    """The project's primary judge; unset, the judge with the most labels in the project,
    derived judges (derived_judge_register) left out."""
    from annotator.models import LMLabel

    if project.primary_judge:
        return project.primary_judge
    top = (
        LMLabel.objects.filter(comparison__project=project)
        .exclude(judge_name__in=sorted(_DERIVED_JUDGES))
        .values("judge_name")
        .annotate(n=Count("id"))
        .order_by("-n", "judge_name")
        .first()
    )
    return top["judge_name"] if top else None


def latest_lm_labels(labels: QuerySet | None = None) -> QuerySet:
    """Of `labels` (default: all), each judge's latest label per comparison: one row per
    (comparison, judge name)."""
    from annotator.models import LMLabel

    labels = LMLabel.objects.all() if labels is None else labels
    recency = Window(
        RowNumber(),
        partition_by=[F("comparison_id"), F("judge_name")],
        order_by=[F(name[1:]).desc() for name in LATEST_FIRST],
    )
    return labels.annotate(latest_rank=recency).filter(latest_rank=1)


def latest_first_sql(alias: str = "") -> str:
    """LATEST_FIRST as an SQL ORDER BY list, for queries written in SQL (the TRL export)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{name[1:]} DESC" for name in LATEST_FIRST)


class FinalLabelCounts(NamedTuple):
    human: int  # comparisons whose final label is their human majority
    lm: int  # comparisons without human votes whose final label is the primary judge's
    none: int  # the rest: a tied vote or a Tie majority, an LM Tie, or no label at all


def final_label_counts(project) -> FinalLabelCounts:
    """Where the project's final labels come from, counted by the rule itself: the numbers of
    human and LM rows of the TRL export."""
    from annotator.models import Comparison, HumanLabel, LMLabel

    votes: dict[int, list[tuple[str, str]]] = {}
    for pk, choice, n in (
        HumanLabel.objects.filter(comparison__project=project)
        .order_by()
        .values_list("comparison_id", "overall_choice")
        .annotate(n=Count("id"))
    ):
        votes.setdefault(pk, []).extend([(choice, Strength.UNKNOWN)] * n)
    decided: dict[tuple, bool] = {}  # one majority per distinct vote count
    human = 0
    for cast in votes.values():
        key = tuple(sorted(cast))
        if key not in decided:
            decided[key] = human_majority(cast) is not None
        human += decided[key]
    lm = 0
    judge = project_primary_judge(project)
    if judge:
        latest = latest_lm_labels(
            LMLabel.objects.filter(comparison__project=project, judge_name=judge)
        ).values_list("comparison_id", "choice")
        lm = sum(1 for pk, choice in latest if pk not in votes and choice != Choice.TIE)
    total = Comparison.objects.filter(project=project).count()
    return FinalLabelCounts(human=human, lm=lm, none=total - human - lm)
