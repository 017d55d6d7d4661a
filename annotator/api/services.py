"""Writes behind the API: tokens and project settings. Each owns its transaction."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from annotator.api.project_settings import project_settings_sections
from annotator.models import ApiToken, Project, Role
from annotator.services import membership_set, project_create, project_guidelines_update

TOKEN_PREFIX = "hp_"


def api_token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user, name: str, created_by=None) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret, which is not stored anywhere."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=secret[:10],
        key_hash=api_token_hash(secret),
        created_by=created_by or user,
    )
    token.full_clean()
    token.save()
    return token, secret


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


@transaction.atomic
def project_create_with_admin(*, user, slug: str, **fields) -> Project:
    """Create a project whose first admin is the user who created it."""
    sections = _section_values(fields)
    project = project_create(slug=slug, **fields)
    membership_set(project=project, user=user, role=Role.ADMIN)
    _sections_write(project, sections)
    return project


def _section_values(fields: dict) -> dict:
    """Take the registered sections' values out of `fields`: section -> its values."""
    return {
        section: {name: fields.pop(name) for name in section.fields if name in fields}
        for section in project_settings_sections()
    }


def _sections_write(project: Project, sections: dict) -> None:
    for section, values in sections.items():
        if values:
            section.write(project=project, **values)


# Settings a project admin may change over the API (guidelines go through their own service, which
# bumps the version).
PROJECT_EDITABLE = (
    "name",
    "description",
    "license",
    "labels_per_item",
    "ask_helpful",
    "ask_truthful",
    "ask_harmless",
    "default_route",
    "primary_judge",
    "lease_minutes",
    "require_aspects",
    "require_confidence",
    "require_rationale",
    "qualification_items",
    "qualification_pass_percent",
    "gold_rate",
)


@transaction.atomic
def project_settings_update(*, project: Project, **fields) -> Project:
    """Change the project's settings and those its apps keep for it (registered sections)."""
    sections = _section_values(fields)
    unknown = set(fields) - {*PROJECT_EDITABLE, "guidelines"}
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    guidelines = fields.pop("guidelines", None)
    locked = Project.objects.select_for_update().get(pk=project.pk)
    _sections_write(locked, sections)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.full_clean()
    locked.save(update_fields=[*fields] or None)
    if guidelines is not None:
        locked = project_guidelines_update(project=locked, guidelines=guidelines)
    return locked
