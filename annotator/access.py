"""Who may see and do what in a project: shared by every app's views."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from annotator.models import Membership, Project, Role
from annotator.selectors import membership_of


def project_for_member(request: HttpRequest, slug: str) -> tuple[Project, Membership | None]:
    """The project if the user belongs to it (or is a superuser); 404 otherwise, so that
    outsiders cannot even learn which projects exist."""
    project = get_object_or_404(Project, slug=slug)
    membership = membership_of(project=project, user=request.user)
    if membership is None and not request.user.is_superuser:
        raise Http404("No such project.")
    return project, membership


def is_project_admin(request: HttpRequest, membership: Membership | None) -> bool:
    return request.user.is_superuser or (membership is not None and membership.role == Role.ADMIN)


def project_for_admin(request: HttpRequest, slug: str) -> Project:
    project, membership = project_for_member(request, slug)
    if not is_project_admin(request, membership):
        raise Http404("No such page.")
    return project


def sees_quality(request: HttpRequest, membership: Membership | None) -> bool:
    """Admins and viewers see the LM's labels and how good judges and annotators are;
    annotators do not: it would bias the labels they give."""
    return is_project_admin(request, membership) or (
        membership is not None and membership.role == Role.VIEWER
    )


def project_for_reader(request: HttpRequest, slug: str) -> tuple[Project, Membership | None]:
    """The project for a page about LM labels or quality (judges, routing, reward models):
    404 for outsiders, 403 for annotators, as the API answers them."""
    project, membership = project_for_member(request, slug)
    if not sees_quality(request, membership):
        raise PermissionDenied("Annotators do not see the LM's labels or judge quality.")
    return project, membership
