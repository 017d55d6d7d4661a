"""Project settings that an upper app keeps in its own model, shown and edited over the API
together with the project's own (`GET` / `PATCH /api/v1/projects/<slug>/`).

The base app cannot name another app's fields, so each app registers a section in its
AppConfig.ready(): the project serializer then offers the section's fields and the settings
service writes them, through the section, in the same transaction as the rest. (scoring
registers `retrain_every`.)
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from annotator.models import Project


@dataclass(frozen=True, eq=False)  # hashed by identity: a registered section is one object
class ProjectSettingsSection:
    name: str
    # Field name -> a DRF field for it (validation, documentation).
    fields: Mapping[str, Callable[[], serializers.Field]]
    # The section's current values of a project (defaults where it has none stored).
    read: Callable[[Project], dict[str, Any]]
    # write(project=..., **values): called inside the settings transaction.
    write: Callable[..., object]
    # What `read` follows from a project, so that a list of projects fetches it in one query.
    select_related: tuple[str, ...] = ()


_SECTIONS: dict[str, ProjectSettingsSection] = {}


def project_settings_section_register(section: ProjectSettingsSection) -> None:
    _SECTIONS[section.name] = section


def project_settings_sections() -> tuple[ProjectSettingsSection, ...]:
    return tuple(_SECTIONS.values())


def projects_with_settings(projects):
    """`projects` (a queryset) with what the registered sections read, fetched alongside."""
    related = [name for section in _SECTIONS.values() for name in section.select_related]
    return projects.select_related(*related) if related else projects


class SectionField(serializers.Field):
    """A section's field on the project serializer: read through the section, validated by
    the section's own field, written back as a plain value of the validated data."""

    def __init__(self, inner: serializers.Field, section: ProjectSettingsSection, **kwargs):
        super().__init__(source="*", required=False, help_text=inner.help_text, **kwargs)
        self.inner, self.section = inner, section

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.inner.bind(field_name, self)

    def to_representation(self, project):
        return self.inner.to_representation(self.section.read(project)[self.field_name])

    def to_internal_value(self, data):
        return {self.field_name: self.inner.run_validation(data)}


class SectionFieldSchema(OpenApiSerializerFieldExtension):
    """The OpenAPI schema of a SectionField is that of the section's own field."""

    target_class = SectionField

    def map_serializer_field(self, auto_schema, direction):
        return auto_schema._map_serializer_field(self.target.inner, direction)
