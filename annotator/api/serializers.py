"""Request and response shapes. Serializers validate and render; services write."""

from dataclasses import replace

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotator.api.project_settings import SectionField, project_settings_sections
from annotator.api.services import PROJECT_EDITABLE
from annotator.conversations import ROLES
from annotator.dataio.export import (
    EXPORT_FORMATS,
    EXPORT_OPTION_NAMES,
    ExportOptions,
    export_options_problems,
)
from annotator.dataio.export.pairs import CONVERSATIONAL, SOURCES
from annotator.dataio.formats import FORMAT_CHOICES
from annotator.dataio.formats.pairing import PAIRINGS
from annotator.dataio.jobs import import_job_progress
from annotator.labels import ASPECTS, label_format
from annotator.models import (
    PROJECT_SETTING_RANGES,
    ApiToken,
    Comparison,
    HumanLabel,
    ImportJob,
    LMLabel,
    Project,
    ProjectAnalytics,
    Role,
)


def _in_range(low, high) -> dict:
    """A number field's bounds, with one message that gives the whole allowed range."""
    problem = f"Must be between {low} and {high}."
    return {
        "min_value": low,
        "max_value": high,
        "error_messages": {"min_value": problem, "max_value": problem},
    }


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role in the project.")

    class Meta:
        model = Project
        fields = [
            "slug",
            "guidelines",
            "guidelines_version",
            *PROJECT_EDITABLE,
            "created_at",
            "role",
        ]
        read_only_fields = ["guidelines_version", "created_at"]
        # The database's check constraints, stated here too so that a bad value names its field.
        extra_kwargs = {
            "name": {"required": False, "help_text": "Default: the slug."},
            "gold_rate": _in_range(0.0, 1.0),
            **{name: _in_range(*bounds) for name, bounds in PROJECT_SETTING_RANGES.items()},
        }

    def get_fields(self):
        fields = super().get_fields()
        for section in project_settings_sections():
            for name, make in section.fields.items():
                fields[name] = SectionField(make(), section)
        return fields

    def get_role(self, project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class ProjectUpdateSerializer(ProjectSerializer):
    class Meta(ProjectSerializer.Meta):
        read_only_fields = ["slug", "guidelines_version", "created_at"]


def _judgement(label, aspect: str) -> str | None:
    choice = getattr(label, f"{aspect}_choice")
    return None if choice is None else label_format(choice, getattr(label, f"{aspect}_strength"))


class HumanLabelSerializer(serializers.ModelSerializer):
    annotator = serializers.SerializerMethodField()
    overall = serializers.SerializerMethodField()
    helpful = serializers.SerializerMethodField()
    truthful = serializers.SerializerMethodField()
    harmless = serializers.SerializerMethodField()

    class Meta:
        model = HumanLabel
        fields = [
            "id",
            "annotator",
            "annotator_type",
            "overall",
            *ASPECTS,
            "confidence",
            "reasons",
            "rationale",
            "time_spent_s",
            "shown_order",
            "guidelines_version",
            "source",
            "created_at",
        ]

    def get_annotator(self, label) -> str:
        return label.who

    def get_overall(self, label) -> str:
        return _judgement(label, "overall")

    def get_helpful(self, label) -> str | None:
        return _judgement(label, "helpful")

    def get_truthful(self, label) -> str | None:
        return _judgement(label, "truthful")

    def get_harmless(self, label) -> str | None:
        return _judgement(label, "harmless")


class LMLabelSerializer(serializers.ModelSerializer):
    judge = serializers.CharField(source="judge_name")
    overall = serializers.SerializerMethodField()

    class Meta:
        model = LMLabel
        fields = [
            "id",
            "judge",
            "judge_version",
            "overall",
            "p_a",
            "p_a_ab",
            "p_a_ba",
            "position_consistent",
            "rationale",
            "truncated",
            "source",
            "created_at",
        ]

    def get_overall(self, label) -> str:
        return label_format(label.choice, label.strength)


@extend_schema_field(
    {
        "type": "array",
        "nullable": True,
        "items": {
            "type": "object",
            "properties": {
                "role": {"type": "string", "enum": list(ROLES)},
                "content": {"type": "string"},
            },
            "required": ["role", "content"],
            "additionalProperties": True,
        },
        "description": "The messages when given as a conversation (the text field holds them "
        "flattened); null for plain text.",
    }
)
class MessagesField(serializers.JSONField):
    pass


class ComparisonSerializer(serializers.ModelSerializer):
    prompt_messages = MessagesField(read_only=True)
    response_a_messages = MessagesField(read_only=True)
    response_b_messages = MessagesField(read_only=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "external_id",
            "prompt",
            "response_a",
            "response_b",
            "prompt_messages",
            "response_a_messages",
            "response_b_messages",
            "model_a",
            "model_b",
            "metadata",
            "route",
            "is_gold",
            "labels_done",
            "created_at",
        ]
        extra_kwargs = {
            "is_gold": {"help_text": "Not shown to annotators."},
            "labels_done": {"help_text": "Not shown to annotators."},
        }

    # Gold status and how many labels a comparison has pick out the quality-control items:
    # annotators get neither.
    HIDDEN_FROM_ANNOTATORS = ("is_gold", "labels_done")

    def get_fields(self):
        fields = super().get_fields()
        if self.context.get("role") == Role.ANNOTATOR:
            for name in self.HIDDEN_FROM_ANNOTATORS:
                fields.pop(name, None)
        return fields


class ComparisonDetailSerializer(ComparisonSerializer):
    """With labels: every label for admins and viewers; annotators get only their own."""

    human_labels = HumanLabelSerializer(many=True, read_only=True)
    lm_labels = LMLabelSerializer(many=True, read_only=True)

    class Meta(ComparisonSerializer.Meta):
        fields = [*ComparisonSerializer.Meta.fields, "human_labels", "lm_labels"]


class ImportParamsSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=FORMAT_CHOICES,
        default="native",
        help_text="The upload's format; auto: told from the first record's keys (the summary's "
        "`format` says which).",
    )
    update = serializers.BooleanField(default=False)
    label_source = serializers.RegexField(
        r"^(human|lm:.+)$",
        default="human",
        help_text="trl/hh-rlhf: 'human' or 'lm:JUDGE' (the dataset's preference as an LM label).",
    )
    name = serializers.CharField(
        required=False,
        max_length=200,
        help_text="File name used in error messages (default: the upload's name).",
    )
    pairing = serializers.ChoiceField(
        choices=PAIRINGS,
        default="best-vs-each",
        help_text="ultrafeedback/helpsteer2/nectar: which pairs of a prompt's responses become "
        "comparisons.",
    )
    pairing_seed = serializers.IntegerField(
        default=0, help_text="The seed of pairing best-vs-random's draw."
    )
    background = serializers.ChoiceField(
        choices=["auto", "true", "false"],
        default="auto",
        help_text="auto: run in a worker when the body is larger than API_IMPORT_SYNC_MAX_BYTES.",
    )


class ImportSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField()
    updated = serializers.IntegerField()
    human_labels = serializers.IntegerField()
    lm_labels = serializers.IntegerField()
    format = serializers.CharField(help_text="The format read (what `auto` chose).")
    notes = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="What was accepted but changed, counted (e.g. null responses read as empty).",
    )


class ImportJobSerializer(serializers.ModelSerializer):
    job = serializers.IntegerField(source="pk", read_only=True)
    source = serializers.CharField(source="source_name")
    errors = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "job",
            "status",
            "progress",
            "source",
            "format",
            "summary",
            "error_count",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "fraction": {"type": "number", "nullable": True},
                "bytes_read": {"type": "integer", "nullable": True},
                "bytes_total": {"type": "integer", "nullable": True},
            },
        }
    )
    def get_progress(self, job) -> dict:
        """Share of the upload read so far (0-1); null for a failed job."""
        return import_job_progress(job=job)

    def get_errors(self, job) -> list[dict]:
        from annotator.api.common.errors import line_error_parse

        return [line_error_parse(text, job.source_name) for text in job.errors]


class AnalyticsSerializer(serializers.ModelSerializer):
    """The cached analytics report (annotator/analytics/report.py documents its contents)."""

    stale = serializers.SerializerMethodField()
    report = serializers.JSONField(allow_null=True)

    class Meta:
        model = ProjectAnalytics
        fields = [
            "computed_at",
            "compute_seconds",
            "labels_version",
            "report_version",
            "stale",
            "refresh_queued",
            "error",
            "report",
        ]

    def get_stale(self, cached) -> bool:
        """True when labels changed after the report was computed (a refresh is on its way)."""
        return cached.report_version != cached.labels_version


EXPORT_KIND_ALIAS_HELP = (
    "Deprecated: the old name of `format`, accepted for one more release. Giving both with "
    "different values is an error (400)."
)


class ExportParamsSerializer(serializers.Serializer):
    """`format` (or `kind`, its deprecated old name, accepted for one more release) and the
    export's options, as export_dataset takes them; an option of another format is a 400."""

    format = serializers.ChoiceField(
        choices=EXPORT_FORMATS,
        required=False,
        help_text="full: every comparison with every label (default); trl: prompt / chosen / "
        "rejected pairs (JSON Lines); parquet: the pairs with their provenance (a Parquet "
        "file); hf: a Hugging Face dataset directory (Parquet shards and a README.md card) as "
        "a zip; multipref: MultiPref's rows with the human annotations.",
    )
    kind = serializers.ChoiceField(
        choices=EXPORT_FORMATS,
        required=False,
        help_text=EXPORT_KIND_ALIAS_HELP,
    )
    source = serializers.ChoiceField(
        choices=SOURCES,
        required=False,
        help_text="trl/parquet/hf: the label that decides chosen/rejected: final (default: the "
        "human majority, else the primary judge), human (the majority only) or lm (the judge "
        "only).",
    )
    min_agreement = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Only comparisons whose human votes agree at least this much (the share for "
        "their most common choice); those without votes are left out.",
    )
    margin = serializers.BooleanField(
        required=False,
        default=False,
        help_text="trl/parquet/hf: a `margin` for TRL's RewardTrainer from the label's strength "
        "(clearly 1.0, slightly 0.5, unknown 0.0).",
    )
    conversational = serializers.ChoiceField(
        choices=CONVERSATIONAL,
        required=False,
        help_text="trl/parquet/hf: prompt/chosen/rejected as lists of messages: auto (default: "
        "when an exported comparison has messages), always or never.",
    )
    with_confidence = serializers.BooleanField(
        required=False,
        default=False,
        help_text="full/trl/parquet/hf: each row's Dawid-Skene `posterior` and "
        "`label_confidence`, from the cached analytics report (400 before the first).",
    )
    min_confidence = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Only rows whose label_confidence is known and at least this.",
    )
    row_group_size = serializers.IntegerField(
        required=False, min_value=1, help_text="parquet/hf: rows per Parquet row group."
    )
    shard_size = serializers.IntegerField(
        required=False, min_value=1, help_text="hf: comparisons per Parquet shard."
    )
    license = serializers.CharField(
        required=False, max_length=100, help_text="hf: the card's licence (default: the project's)."
    )

    def validate(self, data: dict) -> dict:
        chosen, alias = data.get("format"), data.get("kind")
        if chosen and alias and chosen != alias:
            problem = f"format={chosen!r} and kind={alias!r} disagree: give only `format`."
            raise serializers.ValidationError({"format": [problem], "kind": [problem]})
        export_format = chosen or alias or "full"
        options = ExportOptions(
            **{name: data.get(name) for name in EXPORT_OPTION_NAMES if name in data},
        )
        if options.min_confidence is not None:
            options = replace(options, with_confidence=True)
        problems = export_options_problems(export_format, options)
        if problems:
            raise serializers.ValidationError({name: [problem] for name, problem in problems})
        return {"format": export_format, "options": options}


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
