from django.contrib import admin

from scoring.models import LMLabel


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
