"""The assignment engine: who labels which comparison, with leases and no over-assignment.

An annotator asks for the next comparison of a project and gets a lease on one (or their live lease
again). Three rules keep every comparison at `labels_per_item` human labels at most (plus the
`extra_labels` an adjudication asked for), whatever the concurrency:
1. Claiming locks the chosen comparison row (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL; on
   SQLite a write transaction holds the whole database) and counts the lease in `slots_taken`
   (labels + open leases) in the same transaction, so no two claims see the same free slot.
2. A submit re-checks, under the comparison's row lock, that its lease is still open and unexpired
   and that the comparison has fewer labels than wanted.
3. The database allows one label per annotator per comparison and one open lease per annotator per
   project.
Expired leases are reclaimed by the next claim in the project and by a periodic task.
"""

import hashlib
import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from annotator.labels import ASPECTS, Choice, LabelSource, ShownOrder, Strength
from annotator.models import (
    Comparison,
    HumanLabel,
    Lease,
    Membership,
    Project,
    Role,
    Route,
    Skip,
)
from annotator.services import project_labels_changed

LABELLING_ROLES = (Role.ADMIN, Role.ANNOTATOR)
SKIP_REASONS = (
    "The prompt is unclear",
    "It needs expertise I don't have",
    "Offensive or disturbing content",
    "A response does not display properly",
    "Other",
)
RECLAIM_EVERY_S = 5


class AssignmentError(Exception):
    """A request the engine refuses; the message is shown to the annotator as it is."""


class NotAllowed(AssignmentError):
    pass


class LeaseGone(AssignmentError):
    pass


class ComparisonFull(AssignmentError):
    pass


@dataclass(frozen=True)
class LabelAnswer:
    """A judgement in the terms the annotator saw: 1 = the first shown response is clearly
    better, 2 = slightly, 3 = tie, 4 = the second is slightly better, 5 = clearly."""

    overall: int
    aspects: dict[str, int | None] = field(default_factory=dict)
    confidence: str | None = None
    reasons: list[str] = field(default_factory=list)
    rationale: str = ""
    time_spent_s: float | None = None


def shown_to_canonical(value: int, shown_order: str) -> tuple[str, str]:
    """(choice, strength) in A/B terms for a 1-5 answer given in shown order."""
    if value not in (1, 2, 3, 4, 5):
        raise AssignmentError(f"A judgement must be 1 to 5, not {value!r}.")
    if value == 3:
        return Choice.TIE, Strength.UNKNOWN
    first, second = (Choice.A, Choice.B) if shown_order == ShownOrder.AB else (Choice.B, Choice.A)
    choice = first if value < 3 else second
    strength = Strength.CLEARLY if value in (1, 5) else Strength.SLIGHTLY
    return choice, strength


def shown_order_for(comparison_id: int, user_id: int) -> str:
    """Random left/right order per assignment, reproducible from who and what."""
    digest = hashlib.sha256(f"{comparison_id}:{user_id}".encode()).digest()
    return ShownOrder.AB if digest[0] & 1 == 0 else ShownOrder.BA


def membership_for_labelling(*, project: Project, user) -> Membership:
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None or not membership.is_active:
        raise NotAllowed("You are not an active member of this project.")
    if membership.role not in LABELLING_ROLES:
        raise NotAllowed("Viewers cannot label comparisons in this project.")
    return membership


def leases_reclaim(*, project: Project | None = None, annotator=None) -> int:
    """Close expired open leases (of one project or all; of one annotator or all) and give
    their slots back."""
    now = timezone.now()
    expired = Lease.objects.filter(finished_at__isnull=True, expires_at__lte=now)
    if project is not None:
        expired = expired.filter(project=project)
    if annotator is not None:
        expired = expired.filter(annotator=annotator)
    with transaction.atomic():
        leases = list(
            expired.select_for_update(skip_locked=True).values_list(
                "id", "comparison_id", "purpose"
            )
        )
        if not leases:
            return 0
        Lease.objects.filter(id__in=[pk for pk, _, _ in leases]).update(
            finished_at=now, outcome=Lease.Outcome.EXPIRED
        )
        _release_slots([c for _, c, purpose in leases if purpose == Lease.Purpose.LABEL])
    return len(leases)


def _release_slots(comparison_ids: list[int]) -> None:
    for comparison_id in comparison_ids:  # one row each; a comparison may appear twice
        Comparison.objects.filter(pk=comparison_id).update(slots_taken=F("slots_taken") - 1)


def assignment_next(
    *, project: Project, user, membership: Membership | None = None
) -> Lease | None:
    """The annotator's live lease in this project, or a new one on the best free comparison.

    None when nothing is left for them. Raises NotAllowed for non-members, viewers, deactivated
    annotators and those who failed the qualification. `membership`: the caller's already loaded
    membership of this user in this project, to save a query.
    """
    membership = _checked(project, user, membership)
    held = _open_lease(project, user)
    if held is not None:
        if held.expires_at > timezone.now():
            return held
        # Their own expired lease must close before they can hold a new one.
        leases_reclaim(project=project, annotator=user)
    qualifying = _qualification_pending(project, membership, user)
    # Everyone else's expired leases: one claim per project every few seconds looks for them.
    if cache.add(f"leases-reclaimed:{project.pk}", 1, RECLAIM_EVERY_S):
        leases_reclaim(project=project)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Serialise one annotator's own claims (two tabs, a double click) without blocking
            # anybody else: the open-lease constraint would otherwise turn the race into an error.
            # `of`: Membership's ordering joins the project, whose row would be locked too.
            Membership.objects.select_for_update(of=("self",)).filter(pk=membership.pk).first()
        held = _open_lease(project, user)
        if held is not None:  # claimed meanwhile by another request of theirs
            return held
        purpose = _purpose(project, user, qualifying=qualifying)
        if purpose == Lease.Purpose.LABEL:
            comparison_id = _claim_queue(project, membership, user)
        else:
            comparison_id = _claim_gold(project, user)
            if comparison_id is None and purpose == Lease.Purpose.GOLD:
                purpose = Lease.Purpose.LABEL
                comparison_id = _claim_queue(project, membership, user)
        if comparison_id is None:
            return None
        now = timezone.now()
        lease = Lease.objects.create(
            project=project,
            comparison_id=comparison_id,
            annotator=user,
            purpose=purpose,
            shown_order=shown_order_for(comparison_id, user.pk),
            created_at=now,
            expires_at=now + timedelta(minutes=project.lease_minutes),
        )
        if purpose == Lease.Purpose.LABEL:
            Comparison.objects.filter(pk=comparison_id).update(slots_taken=F("slots_taken") + 1)
    return Lease.objects.select_related("comparison").get(pk=lease.pk)


def _checked(project: Project, user, membership: Membership | None) -> Membership:
    if membership is None or membership.project_id != project.pk or membership.user_id != user.pk:
        return membership_for_labelling(project=project, user=user)
    if not membership.is_active:
        raise NotAllowed("You are not an active member of this project.")
    if membership.role not in LABELLING_ROLES:
        raise NotAllowed("Viewers cannot label comparisons in this project.")
    return membership


def _open_lease(project: Project, user) -> Lease | None:
    """The annotator's unfinished lease in the project (there is at most one), live or expired."""
    return (
        Lease.objects.select_related("comparison")
        .filter(project=project, annotator=user, finished_at__isnull=True)
        .first()
    )


def _qualification_pending(project: Project, membership: Membership, user) -> bool:
    """Whether the annotator still owes qualification answers; grades them once all are in.

    Runs before the claim's transaction, so that a failed grade is kept when NotAllowed is raised.
    """
    if not project.qualification_items:
        return False
    if membership.qualification == Membership.Qualification.PENDING:
        answered = HumanLabel.objects.filter(
            comparison__project=project, comparison__is_gold=True, annotator=user
        ).count()
        if answered < project.qualification_items:
            return True
        membership = qualification_grade(membership=membership)
    if membership.qualification == Membership.Qualification.FAILED:
        raise NotAllowed(
            "You did not pass this project's qualification; ask a project admin to reset it."
        )
    return False


def _purpose(project: Project, user, *, qualifying: bool) -> str:
    """What this annotator gets next: qualification gold, a gold check, or a real item."""
    if qualifying:
        return Lease.Purpose.QUALIFICATION
    if project.gold_rate > 0:
        done = HumanLabel.objects.filter(comparison__project=project, annotator=user).count()
        draw = random.Random(f"{project.pk}:{user.pk}:{done}").random()
        if draw < project.gold_rate:
            return Lease.Purpose.GOLD
    return Lease.Purpose.LABEL


def _claim_queue(project: Project, membership: Membership, user) -> int | None:
    base = (
        Comparison.objects.filter(
            project=project,
            route=Route.HUMAN,
            is_gold=False,
            slots_taken__lt=project.labels_per_item + F("extra_labels"),
        )
        # Never twice to the same person; a comparison whose lease expired may come back.
        .exclude(human_labels__annotator=user)
        .exclude(skips__annotator=user)
        .order_by("-slots_taken", "id")
    )
    subjects = membership.subjects if membership.annotator_type == "expert" else []
    if subjects:
        found = _lock_first(base.filter(metadata__subject__in=subjects))
        if found is not None:
            return found
    return _lock_first(base)


def _claim_gold(project: Project, user) -> int | None:
    gold = (
        Comparison.objects.filter(project=project, is_gold=True)
        .exclude(human_labels__annotator=user)
        .exclude(skips__annotator=user)
        .order_by("id")
    )
    return _lock_first(gold)


def _lock_first(queryset) -> int | None:
    return (
        queryset.select_for_update(skip_locked=True, of=("self",))
        .values_list("id", flat=True)
        .first()
    )


def qualification_grade(*, membership: Membership) -> Membership:
    """Grade the annotator's first `qualification_items` gold answers against the gold."""
    project = membership.project
    answers = list(
        HumanLabel.objects.filter(
            comparison__project=project, comparison__is_gold=True, annotator=membership.user
        )
        .order_by("created_at", "id")
        .values_list("overall_choice", "comparison__gold_choice")[: project.qualification_items]
    )
    if len(answers) < project.qualification_items:
        return membership
    right = sum(choice == gold for choice, gold in answers)
    passed = 100 * right >= project.qualification_pass_percent * len(answers)
    membership.qualification = (
        Membership.Qualification.PASSED if passed else Membership.Qualification.FAILED
    )
    Membership.objects.filter(pk=membership.pk).update(qualification=membership.qualification)
    return membership


def label_submit(
    *, lease_id: int, user, answer: LabelAnswer, membership: Membership | None = None
) -> HumanLabel:
    """Store the annotator's label for their lease. Submitting again returns the same label."""
    with transaction.atomic():
        lease = (
            # Only the lease row: locking the project row too would serialise every submit of
            # the project, and wait for any transaction that holds it.
            Lease.objects.select_for_update(of=("self",))
            .select_related("project", "comparison")
            .filter(pk=lease_id)
            .first()
        )
        if lease is None or lease.annotator_id != user.pk:
            raise NotAllowed("This comparison is not assigned to you.")
        existing = HumanLabel.objects.filter(comparison_id=lease.comparison_id, annotator=user)
        if existing.exists():
            return existing.get()
        project = lease.project
        membership = _checked(project, user, membership)
        now = timezone.now()
        if lease.finished_at is not None or lease.expires_at <= now:
            raise LeaseGone(
                "Your time on this comparison ran out and it went back to the queue; "
                "your answer was not saved. Load the next one."
            )
        comparison = (
            Comparison.objects.select_for_update()
            .only("id", "labels_done", "extra_labels")
            .get(pk=lease.comparison_id)
        )
        full = comparison.labels_done >= project.labels_per_item + comparison.extra_labels
        if lease.purpose == Lease.Purpose.LABEL and full:
            raise ComparisonFull("This comparison already has all the labels it needs.")
        label = _label_from_answer(lease, project, membership, answer)
        try:
            with transaction.atomic():
                label.save()
        except IntegrityError:
            return HumanLabel.objects.get(comparison_id=lease.comparison_id, annotator=user)
        Lease.objects.filter(pk=lease.pk).update(finished_at=now, outcome=Lease.Outcome.SUBMITTED)
        project_labels_changed(project_id=project.pk, new_labels=1, origin="annotator")
        counters = {"labels_done": F("labels_done") + 1}
        if lease.purpose != Lease.Purpose.LABEL:
            counters["slots_taken"] = F("slots_taken") + 1  # gold leases never held a slot
        Comparison.objects.filter(pk=comparison.pk).update(**counters)
    return label


def _label_from_answer(
    lease: Lease, project: Project, membership: Membership, answer: LabelAnswer
) -> HumanLabel:
    overall = shown_to_canonical(answer.overall, lease.shown_order)
    fields = {}
    for aspect in ASPECTS:
        value = answer.aspects.get(aspect)
        asked = getattr(project, f"ask_{aspect}")
        if value is None or not asked:
            if asked and project.require_aspects:
                raise AssignmentError(f"Please answer '{aspect}' too.")
            continue
        fields[f"{aspect}_choice"], fields[f"{aspect}_strength"] = shown_to_canonical(
            value, lease.shown_order
        )
    if project.require_confidence and not answer.confidence:
        raise AssignmentError("Please say how confident you are.")
    if project.require_rationale and not answer.rationale.strip():
        raise AssignmentError("Please give a short rationale.")
    if answer.time_spent_s is not None and answer.time_spent_s < 0:
        raise AssignmentError("Time spent cannot be negative.")
    return HumanLabel(
        comparison_id=lease.comparison_id,
        annotator_id=membership.user_id,
        annotator_type=membership.annotator_type,
        overall_choice=overall[0],
        overall_strength=overall[1],
        confidence=answer.confidence or None,
        reasons=sorted(set(answer.reasons)),
        rationale=answer.rationale.strip(),
        time_spent_s=answer.time_spent_s,
        shown_order=lease.shown_order,
        guidelines_version=project.guidelines_version,
        source=LabelSource.PLATFORM,
        **fields,
    )


def assignment_skip(*, lease_id: int, user, reason: str) -> Skip:
    """Pass on the leased comparison; it never comes back to this annotator."""
    reason = (reason or "").strip()[:200]
    if not reason:
        raise AssignmentError("Please say why you skip this comparison.")
    with transaction.atomic():
        lease = Lease.objects.select_for_update().filter(pk=lease_id).first()
        if lease is None or lease.annotator_id != user.pk:
            raise NotAllowed("This comparison is not assigned to you.")
        existing = Skip.objects.filter(comparison_id=lease.comparison_id, annotator=user).first()
        if existing is not None:
            return existing
        if lease.finished_at is not None:
            raise LeaseGone("This comparison is no longer assigned to you.")
        skip = Skip.objects.create(comparison_id=lease.comparison_id, annotator=user, reason=reason)
        Lease.objects.filter(pk=lease.pk).update(
            finished_at=timezone.now(), outcome=Lease.Outcome.SKIPPED
        )
        if lease.purpose == Lease.Purpose.LABEL:
            _release_slots([lease.comparison_id])
    return skip


def annotator_deactivate(*, project: Project, user) -> int:
    """Stop an annotator in a project and release their unfinished leases. Returns how many."""
    with transaction.atomic():
        Membership.objects.filter(project=project, user=user).update(is_active=False)
        leases = list(
            Lease.objects.select_for_update()
            .filter(project=project, annotator=user, finished_at__isnull=True)
            .values_list("id", "comparison_id", "purpose")
        )
        Lease.objects.filter(id__in=[pk for pk, _, _ in leases]).update(
            finished_at=timezone.now(), outcome=Lease.Outcome.RELEASED
        )
        _release_slots([c for _, c, purpose in leases if purpose == Lease.Purpose.LABEL])
    return len(leases)
