"""Project pages for the LM judge: start a run, watch it, read the quality report. They show
the LM's labels and judge quality, so annotators get none of them (403), as in the API."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotator.access import (
    is_project_admin,
    project_for_admin,
    project_for_member,
    project_for_reader,
)
from annotator.models import LMLabel
from scoring.judging.runs import JudgeRunActive, judge_demo, judge_run_start
from scoring.models import REWARD_MODEL_JUDGE, Judge, JudgeRun, RewardModelRun
from scoring.plots import training_curves_png
from scoring.report import JudgeReportError, judge_report, reliability_plot_png
from scoring.training.runs import RewardRunActive, reward_run_cancel, reward_run_start


def _panel_context(request, project, membership, error=""):
    runs = list(JudgeRun.objects.filter(project=project).select_related("judge")[:5])
    return {
        "project": project,
        "runs": runs,
        "active": any(run.is_active for run in runs),
        "is_project_admin": is_project_admin(request, membership),
        "judges": Judge.objects.order_by("name"),
        "judged": list(
            LMLabel.objects.filter(comparison__project=project)
            .values_list("judge_name", flat=True)
            .distinct()
            .order_by("judge_name")
        ),
        "error": error,
    }


@login_required
@require_GET
def judge_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's judge runs; while one is active the partial polls itself."""
    project, membership = project_for_reader(request, slug)
    template = "scoring/_judge_panel.html" if request.htmx else "scoring/judge_panel.html"
    return render(request, template, _panel_context(request, project, membership))


@login_required
@require_POST
def judge_run_create(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_admin(request, slug)
    name = request.POST.get("judge", "")
    judge = Judge.objects.filter(name=name).first() if name else judge_demo()
    if judge is None:
        raise Http404("No such judge.")
    error = ""
    try:
        judge_run_start(project=project, judge=judge)
    except JudgeRunActive as exc:
        error = str(exc)
    if not request.htmx:
        return redirect(reverse("scoring:judge_panel", args=[project.slug]))
    _, membership = project_for_member(request, slug)
    return render(
        request, "scoring/_judge_panel.html", _panel_context(request, project, membership, error)
    )


@login_required
@require_GET
def judge_report_page(request: HttpRequest, slug: str, judge_name: str) -> HttpResponse:
    project, _ = project_for_reader(request, slug)
    family = Judge.objects.filter(name=judge_name).values_list("model_family", flat=True).first()
    try:
        report = judge_report(
            project=project, judge_name=judge_name, judge_family=family or None, n_bootstrap=500
        )
    except JudgeReportError as exc:
        raise Http404(str(exc)) from None
    return render(request, "scoring/judge_report.html", {"project": project, "report": report})


@login_required
@require_GET
def judge_report_plot(request: HttpRequest, slug: str, judge_name: str) -> HttpResponse:
    project, _ = project_for_reader(request, slug)
    get_object_or_404(
        LMLabel.objects.filter(comparison__project=project, judge_name=judge_name)[:1]
    )
    report = judge_report(project=project, judge_name=judge_name, n_bootstrap=0)
    response = HttpResponse(reliability_plot_png(report), content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


# --- reward models ---


def _reward_context(request, project, membership, error=""):
    runs = list(RewardModelRun.objects.filter(project=project)[:20])
    return {
        "project": project,
        "runs": runs,
        "active": any(run.is_active for run in runs),
        "is_project_admin": is_project_admin(request, membership),
        "error": error,
    }


@login_required
@require_GET
def reward_runs(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's reward-model runs; while one is active the list polls itself."""
    project, membership = project_for_reader(request, slug)
    template = "scoring/_reward_runs.html" if request.htmx else "scoring/reward_runs.html"
    return render(request, template, _reward_context(request, project, membership))


@login_required
@require_POST
def reward_run_create(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_admin(request, slug)
    labels = request.POST.get("labels", "final")
    error = ""
    try:
        reward_run_start(
            project=project,
            base_model=request.POST.get("base", "minilm") or "minilm",
            label_source=labels if labels in ("human", "lm", "final") else "final",
        )
    except RewardRunActive as exc:
        error = str(exc)
    if not request.htmx:
        return redirect(reverse("scoring:reward_runs", args=[project.slug]))
    _, membership = project_for_member(request, slug)
    return render(
        request, "scoring/_reward_runs.html", _reward_context(request, project, membership, error)
    )


@login_required
@require_POST
def reward_run_stop(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    project = project_for_admin(request, slug)
    run = get_object_or_404(RewardModelRun, pk=run_id, project=project)
    reward_run_cancel(run_id=run.pk)
    return redirect(reverse("scoring:reward_runs", args=[project.slug]))


@login_required
@require_GET
def reward_run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    project, _ = project_for_reader(request, slug)
    run = get_object_or_404(RewardModelRun, pk=run_id, project=project)
    return render(
        request,
        "scoring/reward_run.html",
        {"project": project, "run": run, "reward_judge": REWARD_MODEL_JUDGE},
    )


@login_required
@require_GET
def reward_run_curves(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    project, _ = project_for_reader(request, slug)
    run = get_object_or_404(RewardModelRun, pk=run_id, project=project)
    response = HttpResponse(
        training_curves_png(run.metrics, title=f"run #{run.pk}"), content_type="image/png"
    )
    response["Cache-Control"] = "private, max-age=5"
    return response


@login_required
@require_GET
def reward_runs_compare(request: HttpRequest, slug: str) -> HttpResponse:
    """Runs side by side (e.g. human-only vs LM-only vs final labels): ?run=1&run=2..."""
    project, _ = project_for_reader(request, slug)
    ids = [int(v) for v in request.GET.getlist("run") if v.isdigit()]
    runs = list(RewardModelRun.objects.filter(project=project, pk__in=ids).order_by("id"))
    keys = sorted({k for run in runs for k in run.final_metrics})
    rows = [(key, [run.final_metrics.get(key) for run in runs]) for key in keys]
    return render(
        request, "scoring/reward_compare.html", {"project": project, "runs": runs, "rows": rows}
    )
