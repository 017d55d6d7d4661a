from django.contrib import admin, messages

from routing.forms import PolicyForm
from routing.live import POLICY_FIELDS, PolicyError, policy_save, policy_state_set
from routing.models import (
    ComparisonFeatures,
    ProjectTagger,
    RouterPrior,
    RoutingDecision,
    RoutingPolicy,
    RoutingRun,
    Tagger,
)
from routing.services import tagger_save


class _ReadOnly(admin.ModelAdmin):
    """Router output is machine-written and decisions are append-only: read-only here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RoutingRun)
class RoutingRunAdmin(_ReadOnly):
    list_display = [
        "id",
        "project",
        "strategy",
        "strategy_version",
        "budget",
        "human",
        "total",
        "kept_human",
        "human_label_cost",
        "expected_label_accuracy",
        "created_at",
    ]
    list_filter = ["project", "strategy"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(_ReadOnly):
    list_display = ["id", "run", "comparison", "route", "strategy", "score", "reason"]
    list_filter = ["route", "strategy", "run__project"]
    list_select_related = ["comparison__project"]
    search_fields = ["comparison__external_id"]
    show_full_result_count = False


@admin.register(ComparisonFeatures)
class ComparisonFeaturesAdmin(_ReadOnly):
    list_display = ["id", "comparison", "version", "computed_at"]
    list_filter = ["version", "comparison__project"]
    list_select_related = ["comparison__project"]
    search_fields = ["comparison__external_id"]
    show_full_result_count = False


class ProjectTaggerInline(admin.TabularInline):
    """The projects tagged by this tagger (a project has at most one)."""

    model = ProjectTagger
    extra = 0
    fields = ["project", "assigned_at"]
    readonly_fields = ["assigned_at"]
    autocomplete_fields = ["project"]


@admin.register(Tagger)
class TaggerAdmin(admin.ModelAdmin):
    """LM tagger configurations. Saving one recomputes its version (model, prompts and
    dimensions); the projects using it then recompute their feature rows on the next run."""

    list_display = ["name", "backend", "version", "model_path", "model_name", "updated_at"]
    list_filter = ["backend"]
    search_fields = ["name", "model_name", "model_path"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [ProjectTaggerInline]

    def save_model(self, request, obj, form, change):
        tagger_save(tagger=obj)


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    """Live routing policies. Settings are saved through routing.live.policy_save (the budget is
    held in labels and may not fall below what is committed); the state changes only through
    the start and pause actions; what the rounds write is read-only. A policy is not deleted
    here: its decisions are the project's routing history."""

    form = PolicyForm
    list_display = [
        "project",
        "state",
        "strategy",
        "budget",
        "budget_unit",
        "labels_committed",
        "budget_labels",
        "rounds",
        "router_version",
        "router_auc",
        "expected_label_accuracy",
        "last_round_at",
    ]
    list_filter = ["state", "strategy"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]
    actions = ["start", "pause"]
    readonly_fields = [
        "state",
        "budget_labels",
        "labels_committed",
        "rounds",
        "router_version",
        "router_trained_on",
        "router_auc",
        "expected_label_accuracy",
        "round_queued",
        "last_round_at",
        "error",
        "created_at",
        "updated_at",
    ]

    def get_fields(self, request, obj=None):
        return ["project", *POLICY_FIELDS, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return ["project", *self.readonly_fields] if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        policy_save(
            project=obj.project, **{name: form.cleaned_data[name] for name in POLICY_FIELDS}
        )

    @admin.action(description="Start the selected policies (queues a round)")
    def start(self, request, queryset):
        self._move(request, queryset, "start")

    @admin.action(description="Pause the selected policies")
    def pause(self, request, queryset):
        self._move(request, queryset, "pause")

    def _move(self, request, queryset, action: str) -> None:
        moved = 0
        for policy in queryset.select_related("project"):
            try:
                policy_state_set(project=policy.project, action=action)
            except PolicyError as exc:
                self.message_user(request, f"{policy.project.slug}: {exc}", messages.ERROR)
            else:
                moved += 1
        if moved:
            self.message_user(request, f"{action}: {moved} policies", messages.SUCCESS)


@admin.register(RouterPrior)
class RouterPriorAdmin(_ReadOnly):
    """Router priors (`manage.py train_router`): each version as it was trained. The model's
    bytes are not shown; they are checked against sha256 whenever a policy loads them."""

    list_display = ["name", "version", "source_projects", "auc", "trained_on", "created_at"]
    list_filter = ["name"]
    search_fields = ["name", "version"]
    fields = [
        "name",
        "version",
        "sha256",
        "source_projects",
        "feature_versions",
        "columns",
        "metrics",
        "created_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("model")

    @admin.display(description="AUC (cross-validated)")
    def auc(self, prior: RouterPrior):
        return prior.metrics.get("auc") if isinstance(prior.metrics, dict) else None

    @admin.display(description="Comparisons learned from")
    def trained_on(self, prior: RouterPrior):
        return prior.metrics.get("n") if isinstance(prior.metrics, dict) else None
