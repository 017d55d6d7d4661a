from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from annotator.labels import LabelSource
from annotator.models import (
    Comparison,
    HumanLabel,
    ImportJob,
    Lease,
    LMLabel,
    Membership,
    Project,
    ProjectAnalytics,
    Skip,
)
from annotator.services import project_guidelines_update


def count_of(model, field: str = "comparison"):
    """A correlated count, computed only for the rows on the page (no GROUP BY over the table)."""
    counts = (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "annotator_type", "subjects", "is_active", "qualification"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "labels_per_item",
        "default_route",
        "primary_judge",
        "guidelines_version",
        "n_comparisons",
        "created_at",
    ]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["guidelines_version", "created_at"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["slug", "name", "description"]}),
        ("Guidelines", {"fields": ["guidelines", "guidelines_version"]}),
        (
            "Labelling",
            {
                "fields": [
                    "labels_per_item",
                    ("ask_helpful", "ask_truthful", "ask_harmless"),
                    "default_route",
                    "primary_judge",
                    "lease_minutes",
                    ("require_aspects", "require_confidence", "require_rationale"),
                ]
            },
        ),
        (
            "Quality control",
            {"fields": ["qualification_items", "qualification_pass_percent", "gold_rate"]},
        ),
        (None, {"fields": ["created_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_comparisons=count_of(Comparison, "project"))

    @admin.display(description="comparisons", ordering="n_comparisons")
    def n_comparisons(self, obj):
        return obj.n_comparisons

    def save_model(self, request, obj, form, change):
        if change and "guidelines" in form.changed_data:
            # The version bump belongs to the service: save the rest, then the new text.
            new_text = obj.guidelines
            obj.guidelines = form.initial.get("guidelines", "")
            super().save_model(request, obj, form, change)
            updated = project_guidelines_update(project=obj, guidelines=new_text)
            obj.guidelines, obj.guidelines_version = updated.guidelines, updated.guidelines_version
        else:
            super().save_model(request, obj, form, change)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HumanLabelInline(ReadOnlyInline):
    model = HumanLabel
    fields = [
        "annotator",
        "annotator_name",
        "annotator_type",
        "overall_choice",
        "overall_strength",
        "confidence",
        "shown_order",
        "source",
        "created_at",
    ]


class LMLabelInline(ReadOnlyInline):
    model = LMLabel
    fields = [
        "judge_name",
        "judge_version",
        "choice",
        "strength",
        "p_a",
        "position_consistent",
        "source",
        "created_at",
    ]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "project",
        "route",
        "is_gold",
        "n_human_labels",
        "n_lm_labels",
        "created_at",
    ]
    list_filter = ["project", "route", "is_gold"]
    list_select_related = ["project"]
    search_fields = ["external_id", "prompt"]
    readonly_fields = ["content_hash", "created_at"]
    show_full_result_count = False
    inlines = [HumanLabelInline, LMLabelInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_human_labels=count_of(HumanLabel), n_lm_labels=count_of(LMLabel))
        )

    @admin.display(description="human labels", ordering="n_human_labels")
    def n_human_labels(self, obj):
        return obj.n_human_labels

    @admin.display(description="LM labels", ordering="n_lm_labels")
    def n_lm_labels(self, obj):
        return obj.n_lm_labels


@admin.register(LMLabel)
class LMLabelAdmin(admin.ModelAdmin):
    """LM labels are machine output: read-only here; re-run the judge to change them."""

    list_display = [
        "id",
        "comparison",
        "judge_name",
        "judge_version",
        "choice",
        "strength",
        "p_a",
        "position_consistent",
        "truncated",
        "source",
        "created_at",
    ]
    list_filter = ["judge_name", "source", "position_consistent", "comparison__project"]
    list_select_related = ["comparison__project"]
    search_fields = ["comparison__external_id", "judge_name"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HumanLabel)
class HumanLabelAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "comparison",
        "who",
        "annotator_type",
        "overall_choice",
        "overall_strength",
        "confidence",
        "source",
        "created_at",
    ]
    list_filter = ["source", "annotator_type", "overall_choice", "comparison__project"]
    list_select_related = ["comparison__project", "annotator"]
    search_fields = ["comparison__external_id", "annotator_name", "annotator__username"]
    raw_id_fields = ["comparison", "annotator"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.source == LabelSource.IMPORTED:
            # Imported labels are the dataset's record; edit the source file and re-import.
            return [f.name for f in self.model._meta.fields]
        return ["source", "created_at"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Background imports are records of what happened: read-only."""

    list_display = [
        "id",
        "project",
        "source_name",
        "format",
        "status",
        "error_count",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "format", "project"]
    search_fields = ["source_name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened, written by the assignment engine only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "comparison",
        "annotator",
        "purpose",
        "shown_order",
        "created_at",
        "expires_at",
        "outcome",
    ]
    list_filter = ["project", "purpose", "outcome"]
    list_select_related = ["project", "comparison", "annotator"]
    search_fields = ["comparison__external_id", "annotator__username"]
    show_full_result_count = False


@admin.register(Skip)
class SkipAdmin(ReadOnlyAdmin):
    list_display = ["id", "comparison", "annotator", "reason", "created_at"]
    list_filter = ["reason", "comparison__project"]
    list_select_related = ["comparison__project", "annotator"]
    search_fields = ["comparison__external_id", "annotator__username"]


@admin.register(ProjectAnalytics)
class ProjectAnalyticsAdmin(ReadOnlyAdmin):
    """The cached analytics report: when it was computed, from which labels, and why a refresh
    failed. The report itself is read on the project's analytics page."""

    list_display = [
        "project",
        "labels_version",
        "report_version",
        "refresh_queued",
        "computed_at",
        "compute_seconds",
        "error",
    ]
    list_filter = ["refresh_queued"]
    search_fields = ["project__slug", "project__name"]
    exclude = ["report", "plots", "posteriors"]
