from django.contrib import admin

from routing.models import (
    ComparisonFeatures,
    ProjectTagger,
    RoutingDecision,
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
