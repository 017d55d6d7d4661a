"""Shared set-up for the REST API tests: a project team with one user per role, and clients."""

from dataclasses import dataclass

from rest_framework.test import APIClient

from annotator.api.services import api_token_create
from annotator.models import Comparison, Project, Role
from tests.factories import (
    ComparisonFactory,
    HumanLabelFactory,
    LMLabelFactory,
    MembershipFactory,
    ProjectFactory,
)

ROLES = ("anonymous", "annotator", "viewer", "admin", "outsider")


@dataclass
class Team:
    project: Project
    other: Project
    users: dict


def team_create() -> Team:
    """Project `proj` with an admin, an annotator and a viewer; `outsider` administers `other`."""
    project = ProjectFactory(slug="proj", name="Project")
    other = ProjectFactory(slug="other", name="Other")
    users = {}
    for role in ("admin", "annotator", "viewer"):
        users[role] = MembershipFactory(project=project, user__username=role, role=role).user
    users["outsider"] = MembershipFactory(
        project=other, user__username="outsider", role=Role.ADMIN
    ).user
    return Team(project=project, other=other, users=users)


def client_for(user=None) -> APIClient:
    """A script's client: the user's token in the Authorization header (anonymous without)."""
    client = APIClient()
    if user is not None:
        _, secret = api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def comparison_with_labels(project: Project, external_id: str = "c1", **fields) -> Comparison:
    """A comparison with an imported human label, an LM label, and nothing from users."""
    comparison = ComparisonFactory(
        project=project,
        external_id=external_id,
        prompt=f"Prompt {external_id}?",
        response_a="Answer A.",
        response_b="Answer B.",
        content_hash="0" * 64,
        labels_done=1,
        slots_taken=1,
        **fields,
    )
    HumanLabelFactory(
        comparison=comparison,
        annotator_name="someone-else",
        overall_choice="A",
        overall_strength="clearly",
    )
    LMLabelFactory(
        comparison=comparison,
        judge_name="judge-x",
        judge_version="v1",
        choice="B",
        strength="slightly",
        p_a=0.3,
    )
    return comparison
