"""Projects, their members, the comparisons to label and the human labels.

Every invariant is a database constraint; business rules live in services, never in `save()`.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotator.background import BackgroundRun
from annotator.constraints import choices_in, probability
from annotator.labels import (
    ASPECTS,
    AnnotatorType,
    Choice,
    Confidence,
    LabelSource,
    ShownOrder,
    Strength,
)


class Route(models.TextChoices):
    PENDING = "pending", "Pending (not routed yet)"
    HUMAN = "human", "Human"
    LM = "lm", "LM judge"


class Role(models.TextChoices):
    ADMIN = "admin", "Project admin"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


# The ranges of a project's numeric settings (validators, check constraints and the API's
# messages share them): beyond them a setting is a typo that would break every page (a lease of
# 10^12 minutes leaves the calendar), and small integer columns overflow.
PROJECT_SETTING_RANGES = {
    "labels_per_item": (1, 100),
    "lease_minutes": (1, 7 * 24 * 60),
    "qualification_items": (0, 1000),
    "qualification_pass_percent": (0, 100),
}


def _in_range(name: str) -> list:
    low, high = PROJECT_SETTING_RANGES[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


def _range_check(name: str) -> models.CheckConstraint:
    low, high = PROJECT_SETTING_RANGES[name]
    return models.CheckConstraint(
        condition=Q(**{f"{name}__gte": low, f"{name}__lte": high}), name=f"project_{name}_range"
    )


class Project(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    guidelines_version = models.PositiveIntegerField(
        default=1, help_text="Incremented whenever the guidelines change; stored on each label."
    )
    labels_per_item = models.PositiveSmallIntegerField(
        default=3,
        validators=_in_range("labels_per_item"),
        help_text="Human labels wanted per human-routed comparison.",
    )
    ask_helpful = models.BooleanField(default=False)
    ask_truthful = models.BooleanField(default=False)
    ask_harmless = models.BooleanField(default=False)
    default_route = models.CharField(
        max_length=10,
        choices=Route.choices,
        default=Route.PENDING,
        help_text="Route given to newly imported comparisons until the router decides.",
    )
    primary_judge = models.CharField(
        max_length=200,
        blank=True,
        help_text="Judge name whose LM labels are final where no human labelled. "
        "Empty: the judge with the most labels in the project.",
    )
    license = models.CharField(
        max_length=100,
        blank=True,
        help_text="Licence of the dataset (e.g. an SPDX id), written in the dataset card.",
    )
    # Annotation settings.
    lease_minutes = models.PositiveSmallIntegerField(
        default=10,
        validators=_in_range("lease_minutes"),
        help_text="How long an annotator holds a comparison before it goes back.",
    )
    require_aspects = models.BooleanField(
        default=False, help_text="The asked aspects must be answered, not only overall."
    )
    require_confidence = models.BooleanField(default=False)
    require_rationale = models.BooleanField(default=False)
    # Quality control with gold comparisons (known answers).
    qualification_items = models.PositiveSmallIntegerField(
        default=0,
        validators=_in_range("qualification_items"),
        help_text="Gold comparisons an annotator must label before real ones (0: none).",
    )
    qualification_pass_percent = models.PositiveSmallIntegerField(
        default=90,
        validators=_in_range("qualification_pass_percent"),
        help_text="Share of the qualification answered right to pass.",
    )
    gold_rate = models.FloatField(
        default=0.0, help_text="After qualification, the share of assignments that are gold (0-1)."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            *(_range_check(name) for name in PROJECT_SETTING_RANGES),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0.0, gold_rate__lte=1.0), name="project_gold_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(guidelines_version__gte=1), name="project_guidelines_version_positive"
            ),
            models.CheckConstraint(
                condition=choices_in("default_route", Route), name="project_default_route_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    annotator_type = models.CharField(
        max_length=10, choices=AnnotatorType.choices, default=AnnotatorType.NORMAL
    )
    subjects = models.JSONField(
        default=list, blank=True, help_text="Subjects an expert annotator is matched to."
    )
    is_active = models.BooleanField(default=True)

    class Qualification(models.TextChoices):
        PENDING = "pending", "Pending"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    qualification = models.CharField(
        max_length=10, choices=Qualification.choices, default=Qualification.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=choices_in("role", Role), name="membership_role_valid"
            ),
            models.CheckConstraint(
                condition=choices_in("annotator_type", AnnotatorType),
                name="membership_annotator_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(qualification__in=["pending", "passed", "failed"]),
                name="membership_qualification_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Comparison(models.Model):
    """One labelling unit: a prompt and two responses (never called "task": Celery owns it)."""

    # No separate index: (project, external_id) leads with project.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="comparisons", db_index=False
    )
    external_id = models.CharField(max_length=255)
    prompt = models.TextField()
    response_a = models.TextField()
    response_b = models.TextField()
    # The lists of messages when the input gave a conversation (annotator.conversations); the
    # text fields above then hold them flattened. NULL: given as plain text.
    prompt_messages = models.JSONField(null=True, blank=True)
    response_a_messages = models.JSONField(null=True, blank=True)
    response_b_messages = models.JSONField(null=True, blank=True)
    model_a = models.CharField(max_length=200, blank=True)
    model_b = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(
        max_length=64,
        help_text="SHA-256 of prompt, response A and response B (their messages if given).",
    )
    route = models.CharField(max_length=10, choices=Route.choices, default=Route.PENDING)
    is_gold = models.BooleanField(default=False, help_text="Known answer, for quality control.")
    gold_choice = models.CharField(max_length=3, choices=Choice.choices, null=True, blank=True)
    # Kept by the services that add labels and leases (never by signals): the queue orders and
    # filters on them without counting rows per comparison.
    labels_done = models.PositiveIntegerField(default=0, help_text="Human labels it has.")
    extra_labels = models.PositiveSmallIntegerField(
        default=0,
        # Also in the database: imports write rows with their own column list (COPY).
        db_default=0,
        help_text="Human labels wanted beyond the project's labels_per_item (adjudication).",
    )
    slots_taken = models.PositiveIntegerField(
        default=0,
        help_text="Of the labels wanted, the slots taken: human labels plus open label leases.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="comparison_external_id_unique"
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="comparison_external_id_not_empty"
            ),
            models.CheckConstraint(
                condition=choices_in("route", Route), name="comparison_route_valid"
            ),
            models.CheckConstraint(
                condition=choices_in("gold_choice", Choice, nullable=True),
                name="comparison_gold_choice_valid",
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_choice__isnull=False),
                name="comparison_gold_has_answer",
            ),
            models.CheckConstraint(
                condition=Q(slots_taken__gte=F("labels_done")),
                name="comparison_load_covers_labels",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "route"], name="comparison_project_route"),
            # Keyset pagination of a project's comparisons (exports, queues).
            models.Index(fields=["project", "id"], name="comparison_project_id"),
            # The annotation queue: nearest to completion first, then oldest.
            models.Index(
                "project",
                F("slots_taken").desc(),
                "id",
                name="comparison_human_queue",
                condition=Q(route="human", is_gold=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.external_id}"


def _judgement_constraints(prefix: str, aspect: str, *, required: bool) -> list:
    choice, strength = f"{aspect}_choice", f"{aspect}_strength"
    rules = [
        models.CheckConstraint(
            condition=choices_in(choice, Choice, nullable=not required),
            name=f"{prefix}_{aspect}_choice_valid",
        ),
        models.CheckConstraint(
            condition=choices_in(strength, Strength, nullable=not required),
            name=f"{prefix}_{aspect}_strength_valid",
        ),
        models.CheckConstraint(
            condition=~Q(**{choice: Choice.TIE}) | Q(**{strength: Strength.UNKNOWN}),
            name=f"{prefix}_{aspect}_tie_has_no_strength",
        ),
    ]
    if not required:
        rules.append(
            models.CheckConstraint(
                condition=Q(**{f"{choice}__isnull": True, f"{strength}__isnull": True})
                | Q(**{f"{choice}__isnull": False, f"{strength}__isnull": False}),
                name=f"{prefix}_{aspect}_choice_strength_together",
            )
        )
    return rules


class HumanLabel(models.Model):
    """One annotator's judgement of one comparison, always in canonical A/B terms."""

    comparison = models.ForeignKey(
        Comparison, on_delete=models.CASCADE, related_name="human_labels"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="human_labels",
        db_index=False,  # (annotator, created_at) leads with it
    )
    annotator_name = models.CharField(
        max_length=200, blank=True, help_text="Who gave an imported label (no platform user)."
    )
    annotator_type = models.CharField(
        max_length=10, choices=AnnotatorType.choices, default=AnnotatorType.NORMAL
    )
    overall_choice = models.CharField(max_length=3, choices=Choice.choices)
    overall_strength = models.CharField(max_length=10, choices=Strength.choices)
    helpful_choice = models.CharField(max_length=3, choices=Choice.choices, null=True, blank=True)
    helpful_strength = models.CharField(
        max_length=10, choices=Strength.choices, null=True, blank=True
    )
    truthful_choice = models.CharField(max_length=3, choices=Choice.choices, null=True, blank=True)
    truthful_strength = models.CharField(
        max_length=10, choices=Strength.choices, null=True, blank=True
    )
    harmless_choice = models.CharField(max_length=3, choices=Choice.choices, null=True, blank=True)
    harmless_strength = models.CharField(
        max_length=10, choices=Strength.choices, null=True, blank=True
    )
    confidence = models.CharField(max_length=10, choices=Confidence.choices, null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_s = models.FloatField(null=True, blank=True)
    shown_order = models.CharField(
        max_length=2,
        choices=ShownOrder.choices,
        null=True,
        blank=True,
        help_text="Left/right order the annotator saw; unknown for imported labels.",
    )
    guidelines_version = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(
        max_length=10, choices=LabelSource.choices, default=LabelSource.PLATFORM
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "annotator"],
                condition=Q(annotator__isnull=False),
                name="humanlabel_one_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["comparison", "annotator_name"],
                condition=~Q(annotator_name=""),
                name="humanlabel_one_per_annotator_name",
            ),
            models.CheckConstraint(
                condition=Q(source=LabelSource.PLATFORM, annotator__isnull=False)
                | Q(source=LabelSource.IMPORTED, annotator__isnull=True) & ~Q(annotator_name=""),
                name="humanlabel_source_has_annotator",
            ),
            models.CheckConstraint(
                condition=choices_in("annotator_type", AnnotatorType),
                name="humanlabel_annotator_type_valid",
            ),
            models.CheckConstraint(
                condition=choices_in("confidence", Confidence, nullable=True),
                name="humanlabel_confidence_valid",
            ),
            models.CheckConstraint(
                condition=choices_in("shown_order", ShownOrder, nullable=True),
                name="humanlabel_shown_order_valid",
            ),
            models.CheckConstraint(
                condition=Q(time_spent_s__isnull=True) | Q(time_spent_s__gte=0),
                name="humanlabel_time_spent_not_negative",
            ),
            *_judgement_constraints("humanlabel", "overall", required=True),
            *(
                rule
                for aspect in ASPECTS
                for rule in _judgement_constraints("humanlabel", aspect, required=False)
            ),
        ]
        indexes = [
            # Per-annotator history on the platform; imported labels have no user and stay out.
            models.Index(
                fields=["annotator", "created_at"],
                name="humanlabel_annotator_time",
                condition=Q(annotator__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        who = self.annotator_name or str(self.annotator)
        return f"{self.comparison_id} by {who}: {self.overall_choice}"

    @property
    def who(self) -> str:
        return self.annotator_name or (self.annotator.get_username() if self.annotator else "")


class LMLabel(models.Model):
    """One judge version's position-debiased verdict on one comparison, in canonical A/B terms.

    Written by the judge runs (scoring) and by imports; it lives in the base app because every
    reader of labels (export, analytics, the final-label rule) needs it.
    """

    comparison = models.ForeignKey(
        Comparison,
        on_delete=models.CASCADE,
        related_name="lm_labels",
        db_index=False,  # the (comparison, judge, version) unique index leads with it
    )
    judge_name = models.CharField(max_length=200)
    judge_version = models.CharField(max_length=200, blank=True)
    choice = models.CharField(max_length=3, choices=Choice.choices)
    strength = models.CharField(max_length=10, choices=Strength.choices)
    p_a = models.FloatField(
        null=True, blank=True, help_text="Probability that A is better, both orders combined."
    )
    p_a_ab = models.FloatField(null=True, blank=True, help_text="P(A better) with A shown first.")
    p_a_ba = models.FloatField(null=True, blank=True, help_text="P(A better) with B shown first.")
    position_consistent = models.BooleanField(
        null=True, blank=True, help_text="Whether both shown orders picked the same response."
    )
    rationale = models.TextField(blank=True)
    raw_output = models.JSONField(default=dict, blank=True)
    truncated = models.BooleanField(
        default=False, help_text="The responses were cut to fit the judge's input limit."
    )
    source = models.CharField(
        max_length=10, choices=LabelSource.choices, default=LabelSource.PLATFORM
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "LM label"
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "judge_name", "judge_version"],
                name="lmlabel_one_per_judge_version",
            ),
            models.CheckConstraint(condition=~Q(judge_name=""), name="lmlabel_judge_named"),
            models.CheckConstraint(
                condition=choices_in("choice", Choice), name="lmlabel_choice_valid"
            ),
            models.CheckConstraint(
                condition=choices_in("strength", Strength), name="lmlabel_strength_valid"
            ),
            models.CheckConstraint(
                condition=~Q(choice=Choice.TIE) | Q(strength=Strength.UNKNOWN),
                name="lmlabel_tie_has_no_strength",
            ),
            models.CheckConstraint(condition=probability("p_a"), name="lmlabel_p_a_range"),
            models.CheckConstraint(condition=probability("p_a_ab"), name="lmlabel_p_a_ab_range"),
            models.CheckConstraint(condition=probability("p_a_ba"), name="lmlabel_p_a_ba_range"),
            models.CheckConstraint(
                condition=choices_in("source", LabelSource), name="lmlabel_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id} by {self.judge_name}@{self.judge_version}: {self.choice}"


IMPORT_FORMAT_NAMES = [
    "auto",
    "native",
    "trl",
    "hh-rlhf",
    "llmbar",
    "multipref",
    "ultrafeedback",
    "ultrafeedback-binarized",
    "helpsteer2",
    "helpsteer2-preference",
    "shp",
    "pku-saferlhf",
    "nectar",
    "arena",
    "arena-conversations",
    "mt-bench-human",
]


class ImportJob(BackgroundRun):
    """An import run by a Celery worker: for files too large to wait for in a request.

    The worker holds the job's row locked for the whole (all-or-nothing) import, so a second
    delivery of its message skips it; progress is read from a file beside the upload.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    source_name = models.CharField(max_length=500, help_text="The file name given by the user.")
    stored_path = models.CharField(
        max_length=1000, help_text="The uploaded copy under IMPORT_DIR; removed when done."
    )
    format = models.CharField(max_length=40)
    options = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="FILE:LINE: field: problem")
    error_count = models.PositiveIntegerField(default=0)

    class Meta(BackgroundRun.Meta):
        constraints = [
            *BackgroundRun.Meta.constraints,
            # The registry's names (annotator.dataio.formats, which imports this module);
            # tests/annotator/test_models.py checks that the two lists agree.
            models.CheckConstraint(
                condition=Q(format__in=IMPORT_FORMAT_NAMES),
                name="importjob_format_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"import #{self.pk} of {self.source_name} into {self.project_id}: {self.status}"


class Lease(models.Model):
    """A comparison handed to one annotator until it is labelled, skipped or the time runs out."""

    class Purpose(models.TextChoices):
        LABEL = "label", "Label"
        QUALIFICATION = "qualification", "Qualification (gold)"
        GOLD = "gold", "Gold check"

    class Outcome(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="leases")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases"
    )
    purpose = models.CharField(max_length=15, choices=Purpose.choices, default=Purpose.LABEL)
    shown_order = models.CharField(max_length=2, choices=ShownOrder.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator"],
                condition=Q(finished_at__isnull=True),
                name="lease_one_open_per_annotator",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True, outcome__isnull=True)
                | Q(finished_at__isnull=False, outcome__isnull=False),
                name="lease_outcome_when_finished",
            ),
            models.CheckConstraint(
                condition=Q(outcome__isnull=True)
                | Q(outcome__in=["submitted", "skipped", "released", "expired"]),
                name="lease_outcome_valid",
            ),
            models.CheckConstraint(
                condition=Q(purpose__in=["label", "qualification", "gold"]),
                name="lease_purpose_valid",
            ),
            models.CheckConstraint(
                condition=choices_in("shown_order", ShownOrder), name="lease_shown_order_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="lease_expires_after_start"
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "expires_at"],
                name="lease_open_by_expiry",
                condition=Q(finished_at__isnull=True),
            ),
            models.Index(fields=["annotator", "comparison"], name="lease_annotator_comparison"),
        ]

    def __str__(self) -> str:
        return f"lease #{self.pk} of {self.comparison_id} to {self.annotator_id}"


class Skip(models.Model):
    """An annotator passed on a comparison; it never comes back to them."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips"
    )
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="skip_once"),
            models.CheckConstraint(condition=~Q(reason=""), name="skip_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} skipped {self.comparison_id}: {self.reason}"


class ApiToken(models.Model):
    """A REST API token. Only a SHA-256 of the secret is stored: the secret is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=12, help_text="The secret's first characters, to tell it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="apitoken_named"),
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="apitoken_hash_is_sha256"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.name}) of {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ProjectAnalytics(models.Model):
    """A project's analytics report (annotator/analytics), cached: the page reads this one row.

    Label writes bump `labels_version` (after their commit) and queue one debounced refresh; the
    refresh stores the report computed from the labels as of `report_version`.
    """

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, primary_key=True, related_name="analytics"
    )
    labels_version = models.PositiveBigIntegerField(
        default=0, help_text="Goes up whenever the project's labels change."
    )
    labels_changed_at = models.DateTimeField(null=True, blank=True)
    report_version = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The labels_version the report was computed from."
    )
    refresh_queued = models.BooleanField(
        default=False, help_text="A refresh task is queued and has not started yet (debounce)."
    )
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True)
    plots = models.JSONField(default=dict, blank=True, help_text="Plot name -> base64 PNG.")
    posteriors = models.BinaryField(
        null=True,
        blank=True,
        help_text="npz: comparison ids and their Dawid-Skene posteriors over A / B / tie.",
    )
    error = models.TextField(blank=True, help_text="Why the last refresh failed, if it did.")

    class Meta:
        verbose_name = "project analytics"
        verbose_name_plural = "project analytics"
        constraints = [
            models.CheckConstraint(
                condition=Q(report_version__isnull=True)
                | Q(report_version__lte=F("labels_version")),
                name="projectanalytics_report_not_ahead",
            ),
        ]

    def __str__(self) -> str:
        return f"analytics of {self.project_id} (labels v{self.labels_version})"

    @property
    def is_stale(self) -> bool:
        return self.report_version != self.labels_version
