"""The project analytics page and its figures: reads of the cached report, nothing computed.

Project admins and viewers see it (annotators never see others' labels or the LM's, not even
summed up); admins can queue a refresh.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotator.access import is_project_admin, project_for_member
from annotator.analytics.report import project_plot_png, project_report_cached
from annotator.analytics.tasks import analytics_refresh_task
from annotator.models import Role

PLOTS = ("agreement", "leaderboard", "labels", "confidence", "time", "position")


def _project_for_reader(request: HttpRequest, slug: str):
    project, membership = project_for_member(request, slug)
    admin = is_project_admin(request, membership)
    if not admin and (membership is None or membership.role != Role.VIEWER):
        raise Http404("No such page.")
    return project, admin


@require_GET
def analytics_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, admin = _project_for_reader(request, slug)
    cached = project_report_cached(project=project)
    report = cached.report if cached is not None else None
    return render(
        request,
        "analytics/project.html",
        {
            "project": project,
            "cached": cached,
            "report": report,
            "is_project_admin": admin,
            "plots": PLOTS if report else (),
        },
    )


@require_GET
def analytics_plot(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    project, _ = _project_for_reader(request, slug)
    png = project_plot_png(project=project, name=name) if name in PLOTS else None
    if png is None:
        raise Http404("No such figure.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


@require_POST
def analytics_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    project, admin = _project_for_reader(request, slug)
    if not admin:
        raise Http404("No such page.")
    analytics_refresh_task.delay(project.pk)
    return redirect(reverse("annotator:analytics:page", args=[project.slug]))
