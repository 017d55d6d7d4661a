"""Project roles in the API, on top of annotator.access (outsiders get 404, as on the pages).

- admin: everything in the project;
- viewer: read everything, export, see runs;
- annotator: read comparisons with their own labels only; no export, no runs, no import.
"""

from rest_framework.exceptions import PermissionDenied

from annotator.access import is_project_admin, project_for_member
from annotator.models import Membership, Project, Role

READ = "read"  # any member
EXPORT = "export"  # admins and viewers: every label, exports, runs
ADMIN = "admin"

_ALLOWED = {
    READ: {Role.ADMIN, Role.ANNOTATOR, Role.VIEWER},
    EXPORT: {Role.ADMIN, Role.VIEWER},
    ADMIN: {Role.ADMIN},
}
_REFUSAL = {
    EXPORT: "Annotators cannot export or see other people's or the LM's labels.",
    ADMIN: "Only the project's admins can do this.",
}


def project_role(request, membership: Membership | None) -> str:
    return Role.ADMIN if is_project_admin(request, membership) else membership.role


def project_access(request, slug: str, need: str = READ) -> tuple[Project, str]:
    """The project and the caller's role in it; 404 for non-members, 403 without the right."""
    project, membership = project_for_member(request, slug)
    role = project_role(request, membership)
    if role not in _ALLOWED[need]:
        raise PermissionDenied(_REFUSAL[need])
    return project, role
