"""The routing panel of a project page: thin, one selector."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotator.access import project_for_member
from routing.selectors import routing_panel_data


@login_required
@require_GET
def routing_panel(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for_member(request, slug)
    template = "routing/_panel.html" if request.htmx else "routing/panel.html"
    return render(request, template, {"project": project, **routing_panel_data(project)})
