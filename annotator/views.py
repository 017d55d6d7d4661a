"""Pages for annotators and project admins. Thin: check access, call one service, render.

The annotate page works with htmx (submitting swaps in the next comparison) and without
JavaScript (plain form posts redirect back to the page).
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotator.access import is_project_admin, project_for_member, sees_quality
from annotator.assignment import (
    AssignmentError,
    LeaseGone,
    NotAllowed,
    annotator_deactivate,
    assignment_next,
    assignment_skip,
    label_submit,
)
from annotator.forms import LabelForm, SkipForm
from annotator.models import Lease, Project, Role
from annotator.selectors import (
    annotator_progress,
    annotator_stats,
    project_counts,
    projects_for_user,
)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "annotator/home.html", {"projects": projects_for_user(request.user)})


@login_required
@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    return render(
        request,
        "annotator/project.html",
        {
            "project": project,
            "membership": membership,
            "counts": project_counts(project=project),
            "progress": annotator_progress(project=project, user=request.user),
            "is_project_admin": is_project_admin(request, membership),
            "can_label": membership is not None and membership.role != Role.VIEWER,
            # Gold counts, the judge, routing and reward models: not for annotators.
            "sees_quality": sees_quality(request, membership),
        },
    )


def _work_context(request, project, lease: Lease | None, form=None, message="", error=""):
    context = {
        "project": project,
        "lease": lease,
        "message": message,
        "error": error,
        "progress": annotator_progress(project=project, user=request.user),
        "skip_form": SkipForm(),
    }
    if lease is not None:
        comparison = lease.comparison
        a = (comparison.response_a, comparison.response_a_messages)
        b = (comparison.response_b, comparison.response_b_messages)
        first, second = (a, b) if lease.shown_order == "AB" else (b, a)
        form = form or LabelForm(project=project)
        context.update(
            comparison=comparison,
            first=first[0],
            first_messages=first[1],
            second=second[0],
            second_messages=second[1],
            form=form,
            fields=form.display(),
            submit_url=reverse("annotator:submit", args=[project.slug, lease.pk]),
            skip_url=reverse("annotator:skip", args=[project.slug, lease.pk]),
        )
    return context


def _denied(request, project, refusal: Exception) -> HttpResponse:
    context = {"project": project, "reason": refusal}
    if request.htmx:
        return render(request, "annotator/_denied.html", context)
    return render(request, "annotator/denied.html", context, status=403)


def _render_work(request, project, context, status=200) -> HttpResponse:
    # htmx swaps only 2xx responses by default: errors it must show come back as 200 partials.
    if request.htmx:
        return render(request, "annotator/_work.html", context)
    return render(request, "annotator/annotate.html", context, status=status)


@login_required
@require_GET
def annotate(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    try:
        lease = assignment_next(project=project, user=request.user, membership=membership)
    except NotAllowed as refusal:
        return _denied(request, project, refusal)
    return _render_work(request, project, _work_context(request, project, lease))


ALREADY_SUBMITTED = (
    "You had already submitted this comparison: your first answer is kept and nothing changed."
)


def _next(request: HttpRequest, project: Project, membership, *, message: str = "") -> HttpResponse:
    """After a submit or a skip: the next comparison (htmx) or a redirect to it (plain form,
    the message going along as a flash message)."""
    if not request.htmx:
        if message:
            messages.info(request, message)
        return redirect(reverse("annotator:annotate", args=[project.slug]), permanent=False)
    try:
        lease = assignment_next(project=project, user=request.user, membership=membership)
    except NotAllowed as refusal:
        return _denied(request, project, refusal)
    return _render_work(request, project, _work_context(request, project, lease, message=message))


@login_required
@require_POST
def submit(request: HttpRequest, slug: str, lease_id: int) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    lease = get_object_or_404(
        Lease.objects.select_related("comparison"), pk=lease_id, project=project
    )
    # Whose lease it is, before anything is validated or shown: an invalid form re-renders the
    # comparison, which must never be someone else's.
    if lease.annotator_id != request.user.pk:
        return _denied(request, project, NotAllowed("This comparison is not assigned to you."))
    if lease.outcome == Lease.Outcome.SUBMITTED:
        return _next(request, project, membership, message=ALREADY_SUBMITTED)
    form = LabelForm(request.POST, project=project)
    if not form.is_valid():
        context = _work_context(request, project, lease, form=form, error=form.error_summary())
        return _render_work(request, project, context, status=400)
    try:
        label_submit(
            lease_id=lease.pk, user=request.user, answer=form.answer(), membership=membership
        )
    except NotAllowed as refusal:
        return _denied(request, project, refusal)
    except LeaseGone as gone:
        return _next(request, project, membership, message=str(gone))
    except AssignmentError as problem:
        if lease.finished_at is None:
            context = _work_context(request, project, lease, form=form, error=str(problem))
            return _render_work(request, project, context, status=409)
        return _next(request, project, membership, message=str(problem))
    return _next(request, project, membership, message="Saved.")


@login_required
@require_POST
def skip(request: HttpRequest, slug: str, lease_id: int) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    lease = get_object_or_404(
        Lease.objects.select_related("comparison"), pk=lease_id, project=project
    )
    form = SkipForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        assignment_skip(lease_id=lease.pk, user=request.user, reason=reason)
    except NotAllowed as refusal:
        return _denied(request, project, refusal)
    except AssignmentError as problem:
        context = _work_context(request, project, lease, error=str(problem))
        return _render_work(request, project, context, status=400)
    return _next(request, project, membership, message="Skipped; it will not come back to you.")


@login_required
@require_GET
def annotators(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    if not is_project_admin(request, membership):
        raise Http404("No such page.")
    return render(
        request,
        "annotator/annotators.html",
        {"project": project, "stats": annotator_stats(project=project)},
    )


@login_required
@require_POST
def deactivate(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    project, membership = project_for_member(request, slug)
    if not is_project_admin(request, membership):
        raise Http404("No such page.")
    user = get_object_or_404(get_user_model(), pk=user_id, memberships__project=project)
    annotator_deactivate(project=project, user=user)
    return redirect(reverse("annotator:annotators", args=[project.slug]))
