"""REST endpoints for routing runs (under /api/v1/projects/<slug>/routing-runs/): list, status
and summary, and each run's decisions with their reasons. Viewers and admins read them;
annotators do not (a route says what the LM judged)."""

import django_filters
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api.pagination import NewestFirstPagination
from annotator.api.permissions import EXPORT, project_access
from annotator.api.serializers import ErrorSerializer
from routing.models import DecidedRoute, RoutingDecision, RoutingRun

ERRORS = {
    code: OpenApiResponse(ErrorSerializer, description=text)
    for code, text in (
        (401, "Not authenticated"),
        (403, "The caller's role does not allow it"),
        (404, "No such project or run"),
    )
}


class RoutingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoutingRun
        fields = [
            "id",
            "strategy",
            "strategy_version",
            "feature_version",
            "primary_judge",
            "budget_fraction",
            "budget_count",
            "budget",
            "labels_per_item",
            "total",
            "human",
            "lm",
            "kept_human",
            "human_label_cost",
            "expected_label_accuracy",
            "options",
            "summary",
            "created_at",
        ]


class RoutingDecisionSerializer(serializers.ModelSerializer):
    comparison = serializers.IntegerField(source="comparison_id")
    external_id = serializers.CharField(source="comparison.external_id")

    class Meta:
        model = RoutingDecision
        fields = [
            "id",
            "comparison",
            "external_id",
            "route",
            "strategy",
            "strategy_version",
            "score",
            "reason",
            "budget",
            "created_at",
        ]


class DecisionFilter(django_filters.FilterSet):
    route = django_filters.ChoiceFilter(choices=DecidedRoute.choices)

    class Meta:
        model = RoutingDecision
        fields = ["route"]


class RoutingRunList(generics.ListAPIView):
    serializer_class = RoutingRunSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RoutingRun.objects.none()
        project, _ = project_access(self.request, self.kwargs["slug"], EXPORT)
        return RoutingRun.objects.filter(project=project)


class RoutingRunDetail(APIView):
    @extend_schema(responses={200: RoutingRunSerializer, **ERRORS})
    def get(self, request, slug: str, pk: int):
        """A routing run: strategy, budget, how many went to humans and to the LM, the expected
        label accuracy and the strategy's summary."""
        project, _ = project_access(request, slug, EXPORT)
        return Response(
            RoutingRunSerializer(get_object_or_404(RoutingRun, project=project, pk=pk)).data
        )


class RoutingDecisionList(generics.ListAPIView):
    """Each comparison's route in the run, with the strategy's score and reason."""

    serializer_class = RoutingDecisionSerializer
    filterset_class = DecisionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RoutingDecision.objects.none()
        project, _ = project_access(self.request, self.kwargs["slug"], EXPORT)
        run = get_object_or_404(RoutingRun, project=project, pk=self.kwargs["pk"])
        return RoutingDecision.objects.filter(run=run).select_related("comparison")


project = "projects/<slug:slug>/"
urlpatterns = [
    path(f"{project}routing-runs/", RoutingRunList.as_view(), name="routing_runs"),
    path(f"{project}routing-runs/<int:pk>/", RoutingRunDetail.as_view(), name="routing_run"),
    path(
        f"{project}routing-runs/<int:pk>/decisions/",
        RoutingDecisionList.as_view(),
        name="routing_decisions",
    ),
]
