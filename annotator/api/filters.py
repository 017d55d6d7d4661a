"""Comparison filters shared by the list endpoint and the export."""

from datetime import UTC

import django_filters
from django import forms
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from annotator.models import Comparison, HumanLabel, LMLabel, Route


def _distinct_choices():
    return Subquery(
        HumanLabel.objects.filter(comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("overall_choice", distinct=True))
        .values("n"),
        output_field=IntegerField(),
    )


def _human_count():
    return Subquery(
        HumanLabel.objects.filter(comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("*"))
        .values("n"),
        output_field=IntegerField(),
    )


class _StrictNullBooleanField(forms.NullBooleanField):
    """true/false (1/0), or absent; anything else is an error naming the parameter, where
    Django's field reads it as "no filter" (has_human_labels=maybe exported everything). The
    text widget hands the value on as sent (the select widget maps unknown values to None)."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError(f"Must be true or false, not {value!r}.")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = _StrictNullBooleanField


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time with any offset Python accepts, compared in UTC (PostgreSQL refuses
    offsets beyond 15:59, and times that leave the calendar in UTC)."""

    def __init__(self, *args, param: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.param = param  # the query parameter, which an error must name (not the field)

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise ValidationError({self.param: ["out of range"]}) from None
        return super().filter(qs, value)


class ComparisonFilter(django_filters.FilterSet):
    route = django_filters.ChoiceFilter(choices=Route.choices)
    external_id = django_filters.CharFilter()
    has_human_labels = StrictBooleanFilter(
        method="filter_has_human_labels", label="Has at least one human label."
    )
    has_lm_label = StrictBooleanFilter(
        method="filter_has_lm_label", label="Has at least one LM label (any judge)."
    )
    judge = django_filters.CharFilter(
        method="filter_judge", label="Has an LM label from the judge of this name."
    )
    agreement = django_filters.ChoiceFilter(
        method="filter_agreement",
        choices=[
            ("unanimous", "Two or more human labels, all with the same overall choice"),
            ("split", "Human labels with different overall choices"),
        ],
        label="Agreement among the human labels.",
    )
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", param="created_after"
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", param="created_before"
    )

    # Filters that reveal other people's or the LM's labels: not for annotators.
    LABEL_FILTERS = ("has_lm_label", "judge", "agreement")
    # Filters that pick out the quality-control (gold) items, labelled more than the rest:
    # not for annotators either (a 400 naming the parameter).
    ANNOTATOR_REFUSED = ("has_human_labels",)

    class Meta:
        model = Comparison
        fields = ["route", "external_id"]

    def filter_has_human_labels(self, queryset, name, value):
        if value is None:
            return queryset
        # The counter is kept by every service that writes human labels.
        return queryset.filter(labels_done__gt=0) if value else queryset.filter(labels_done=0)

    def filter_has_lm_label(self, queryset, name, value):
        if value is None:
            return queryset
        exists = Exists(LMLabel.objects.filter(comparison=OuterRef("pk")))
        return queryset.filter(exists if value else ~exists)

    def filter_judge(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(
            Exists(LMLabel.objects.filter(comparison=OuterRef("pk"), judge_name=value))
        )

    def filter_agreement(self, queryset, name, value):
        if value == "unanimous":
            return queryset.alias(api_choices=_distinct_choices(), api_votes=_human_count()).filter(
                api_choices=1, api_votes__gte=2
            )
        if value == "split":
            return queryset.alias(api_choices=_distinct_choices()).filter(api_choices__gt=1)
        return queryset


# The same filters in the OpenAPI schema of the list and the export.
COMPARISON_FILTER_PARAMETERS = [
    OpenApiParameter("route", OpenApiTypes.STR, enum=Route.values),
    OpenApiParameter("external_id", OpenApiTypes.STR),
    OpenApiParameter("has_human_labels", OpenApiTypes.BOOL, description="Not for annotators."),
    OpenApiParameter("has_lm_label", OpenApiTypes.BOOL, description="Not for annotators."),
    OpenApiParameter(
        "judge", OpenApiTypes.STR, description="Has a label of this judge. Not for annotators."
    ),
    OpenApiParameter(
        "agreement",
        OpenApiTypes.STR,
        enum=["unanimous", "split"],
        description="Agreement among the human labels. Not for annotators.",
    ),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="created_at >= this"),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="created_at < this"),
]
