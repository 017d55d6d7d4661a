"""The routing panel of a project page and its live policy section: thin, one selector or one
service each. The page shows what the LM judged (how often it is wrong), so annotators get none
of it (403, as in the API): admins edit and start or pause the policy, viewers read it."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotator.access import is_project_admin, project_for_admin, project_for_reader
from annotator.models import Project
from routing.forms import PolicyForm
from routing.live import POLICY_FIELDS, PolicyError, policy_save, policy_state_set
from routing.models import RoutingPolicy
from routing.selectors import policy_figures, routing_panel_data


def _policy_context(
    request: HttpRequest, project: Project, *, admin: bool, form: PolicyForm | None = None
) -> dict:
    if admin and form is None:
        policy = RoutingPolicy.objects.filter(project=project).first()
        form = PolicyForm(instance=policy or RoutingPolicy(project=project), auto_id="policy-%s")
    return {
        "project": project,
        "figures": policy_figures(project),
        "is_project_admin": admin,
        "policy_form": form,
    }


@login_required
@require_GET
def routing_panel(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_for_reader(request, slug)
    template = "routing/_panel.html" if request.htmx else "routing/panel.html"
    admin = is_project_admin(request, membership)
    context = {
        "project": project,
        **routing_panel_data(project),
        "show_policy": True,
        **_policy_context(request, project, admin=admin),
    }
    return render(request, template, context)


@login_required
@require_GET
def policy_figures_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The policy's figures (the part of the panel that polls itself while they move)."""
    project, membership = project_for_reader(request, slug)
    context = {
        "project": project,
        "figures": policy_figures(project),
        "is_project_admin": is_project_admin(request, membership),
    }
    return render(request, "routing/_policy_figures.html", context)


@login_required
@require_POST
def policy_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Create or change the policy's settings (routing.live.policy_save)."""
    project = project_for_admin(request, slug)
    policy = RoutingPolicy.objects.filter(project=project).first()
    form = PolicyForm(
        request.POST, instance=policy or RoutingPolicy(project=project), auto_id="policy-%s"
    )
    if form.is_valid():
        try:
            policy_save(
                project=project, **{name: form.cleaned_data[name] for name in POLICY_FIELDS}
            )
        except PolicyError as exc:
            # policy_save refuses only budgets: none for a new policy, or one below what the
            # releases have committed.
            form.add_error("budget", str(exc))
    return _policy_response(request, project, form=form if form.errors else None)


@login_required
@require_POST
def policy_state(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """Start or pause the policy (routing.live.policy_state_set)."""
    project = project_for_admin(request, slug)
    error = ""
    try:
        policy_state_set(project=project, action=action)
    except PolicyError as exc:
        error = str(exc)
    return _policy_response(request, project, error=error)


def _policy_response(
    request: HttpRequest, project: Project, *, form: PolicyForm | None = None, error: str = ""
) -> HttpResponse:
    """The policy section again (htmx), or the routing page: redirected to after a change,
    rendered where there is an error to show."""
    if not request.htmx and form is None and not error:
        return redirect(reverse("routing:panel", args=[project.slug]))
    context = {**_policy_context(request, project, admin=True, form=form), "policy_error": error}
    if request.htmx:
        return render(request, "routing/_policy.html", context)
    context |= {"show_policy": True, **routing_panel_data(project)}
    return render(request, "routing/panel.html", context)
