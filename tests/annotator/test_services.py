from annotator.models import Role
from annotator.services import membership_set, project_create, project_guidelines_update
from tests.factories import UserFactory


def test_guidelines_version_goes_up_only_when_the_text_changes(db):
    project = project_create(slug="g", guidelines="Be kind.")
    assert project.guidelines_version == 1

    project = project_guidelines_update(project=project, guidelines="Be kind.")
    assert project.guidelines_version == 1

    project = project_guidelines_update(project=project, guidelines="Be kind and exact.")
    assert (project.guidelines, project.guidelines_version) == ("Be kind and exact.", 2)


def test_project_create_validates_the_slug(db):
    import pytest
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="slug"):
        project_create(slug="not a slug")


def test_membership_set_updates_the_role_and_reactivates(project):
    user = UserFactory()
    first = membership_set(project=project, user=user)
    first.is_active = False
    first.save()

    again = membership_set(project=project, user=user, role=Role.VIEWER)

    assert again.pk == first.pk
    assert (again.role, again.is_active) == ("viewer", True)
