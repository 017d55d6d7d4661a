"""Request bodies that refuse fields they do not know: DRF drops them silently, so a typo
(`{"base": ...}` for `base_model`) started a run with the defaults."""

from collections.abc import Mapping

from rest_framework import serializers


class UnknownFieldsRefused(serializers.Serializer):
    """Mixed into a request serializer: every unknown field is a 400 that names it."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = sorted(name for name, field in self.fields.items() if not field.read_only)
            unknown = sorted(set(data) - set(known))
            if unknown:
                problem = f"Unknown field; the fields are: {', '.join(known)}."
                raise serializers.ValidationError({name: [problem] for name in unknown})
        return super().to_internal_value(data)
