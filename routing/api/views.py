"""REST endpoints for routing runs (under /api/v1/projects/<slug>/routing-runs/): route a project
under a budget, list runs, a run's summary and its decisions with their reasons; queue the text
features the learning strategies need. Admins route; viewers read; annotators see none (a route
says what the LM judged)."""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api.common.errors import error_responses
from annotator.api.common.pagination import NewestFirstPagination
from annotator.api.common.permissions import ADMIN, EXPORT, project_access
from routing.models import DecidedRoute, RoutingDecision, RoutingRun
from routing.services import Budget, RoutingError, routing_run_create
from routing.strategies import STRATEGIES
from routing.tasks import features_compute_task

ERRORS = error_responses(
    400,
    401,
    403,
    404,
    e400="Invalid input, or the project cannot be routed as asked",
    e404="No such project or run",
)


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


class RoutingRunStartSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(
        choices=[(name, s.description) for name, s in STRATEGIES.items()]
    )
    budget_fraction = serializers.FloatField(
        required=False, min_value=0.0, max_value=1.0, help_text="Share of comparisons for humans."
    )
    budget_count = serializers.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, help_text="Comparisons for humans."
    )
    primary_judge = serializers.CharField(
        required=False, max_length=200, help_text="Default: the project's primary judge."
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)

    def validate(self, data):
        if "budget_fraction" in data and "budget_count" in data:
            raise ValidationError(
                {"budget_count": ["give the budget as a fraction or as a count, not both"]}
            )
        return data


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

    @extend_schema(
        request=RoutingRunStartSerializer, responses={201: RoutingRunSerializer, **ERRORS}
    )
    def post(self, request, slug: str):
        """Route the project under a human budget (a fraction or a count of comparisons) with a
        strategy; comparisons with human labels stay human. Runs in the request and answers
        with the run. Learning strategies need the text features (`routing-features/`)."""
        project, _ = project_access(request, slug, ADMIN)
        params = RoutingRunStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        budget = None
        if "budget_fraction" in data:
            budget = Budget.of(fraction=data["budget_fraction"])
        elif "budget_count" in data:
            budget = Budget.of(count=data["budget_count"])
        try:
            run = routing_run_create(
                project=project,
                strategy=data["strategy"],
                budget=budget,
                primary_judge=data.get("primary_judge"),
                seed=data["seed"],
                user=request.user,
            )
        except RoutingError as exc:
            raise ValidationError({"strategy": [str(exc)]}) from None
        return Response(RoutingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class RoutingFeatures(APIView):
    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(description='Queued: {"status": "queued"}'),
            **{code: ERRORS[code] for code in (401, 403, 404)},
        },
    )
    def post(self, request, slug: str):
        """Queue the computation of the project's missing text features on a worker (what the
        learning strategies read)."""
        project, _ = project_access(request, slug, ADMIN)
        features_compute_task.delay_on_commit(project.pk)
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


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
