"""REST endpoints for routing runs (under /api/v1/projects/<slug>/routing-runs/): route a project
under a budget, list runs, a run's summary and its decisions with their reasons; queue the text
features the learning strategies need. The live routing policy (routing-policy: its figures,
settings, start and pause) and the router priors it may start from. Admins route and set the
policy; viewers read; annotators see none (a route says what the LM judged)."""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api.common.errors import Conflict, error_responses
from annotator.api.common.pagination import NewestFirstPagination
from annotator.api.common.permissions import ADMIN, EXPORT, project_access
from annotator.api.common.strict import UnknownFieldsRefused
from annotator.selectors import projects_for_user
from routing.live import PolicyError, policy_save, policy_state_set
from routing.models import (
    BudgetUnit,
    DecidedRoute,
    PolicyState,
    PolicyStrategy,
    RouterPrior,
    RoutingDecision,
    RoutingPolicy,
    RoutingRun,
)
from routing.priors import PriorError
from routing.selectors import policy_figures, prior_checked
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


class RoutingRunStartSerializer(UnknownFieldsRefused, serializers.Serializer):
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


# --- the live routing policy (routing.live) ---------------------------------------------------

POLICY_ERRORS = error_responses(
    400,
    401,
    403,
    404,
    409,
    e400="Invalid settings (a budget below what is committed names the `budget` field)",
    e404="No such project, or it has no routing policy",
    e409="The policy's state does not allow it (a spent policy cannot start)",
)


class PolicyFiguresSerializer(serializers.Serializer):
    """The body of the policy endpoints: routing.selectors.PolicyFigures, the same figures as
    the project page's panel and `manage.py routing_policy --show`."""

    state = serializers.ChoiceField(choices=PolicyState.choices)
    strategy = serializers.ChoiceField(choices=PolicyStrategy.choices)
    budget = serializers.IntegerField(help_text="The total human budget, in budget_unit.")
    budget_unit = serializers.ChoiceField(choices=BudgetUnit.choices)
    labels_per_item = serializers.IntegerField(help_text="The project's, now.")
    budget_labels = serializers.IntegerField(help_text="The budget in human labels.")
    labels_committed = serializers.IntegerField(help_text="Asked for by the releases so far.")
    labels_spent = serializers.IntegerField(help_text="Collected on the released comparisons.")
    labels_left = serializers.IntegerField(help_text="budget_labels - labels_committed.")
    budget_comparisons = serializers.IntegerField(help_text="The budget in comparisons.")
    comparisons_released = serializers.IntegerField()
    comparisons_complete = serializers.IntegerField(help_text="Released, with every label.")
    comparisons_outstanding = serializers.IntegerField(help_text="Released, waiting for labels.")
    comparisons_left = serializers.IntegerField(help_text="The labels left, in comparisons.")
    seed_size = serializers.IntegerField()
    seed_tag = serializers.CharField()
    batch_size = serializers.IntegerField()
    refit_every = serializers.IntegerField()
    prior = serializers.CharField(allow_null=True, help_text="name@version, or null.")
    prior_threshold = serializers.IntegerField()
    max_labels_per_item = serializers.IntegerField()
    rounds = serializers.IntegerField()
    router_version = serializers.CharField()
    router_trained_on = serializers.IntegerField()
    router_auc = serializers.FloatField(
        allow_null=True, help_text='Cross-validated AUC of "LM label wrong".'
    )
    expected_label_accuracy = serializers.FloatField(allow_null=True)
    round_queued = serializers.BooleanField()
    last_round_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the last round failed; empty if it did not.")


class PolicySettingsSerializer(serializers.Serializer):
    """Settings to change; those left out keep their value (or the default, for a new policy,
    which needs a budget)."""

    strategy = serializers.ChoiceField(choices=PolicyStrategy.choices, required=False)
    budget = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    budget_unit = serializers.ChoiceField(choices=BudgetUnit.choices, required=False)
    seed_size = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    seed_tag = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="A tag key, e.g. category."
    )
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    refit_every = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    prior = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=100,
        help_text="A router prior's name (its latest version); null: none.",
    )
    prior_threshold = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    max_labels_per_item = serializers.IntegerField(required=False, min_value=0, max_value=32767)

    def validate_prior(self, name: str | None) -> RouterPrior | None:
        if name is None:
            return None
        try:
            return prior_checked(name)
        except PriorError as exc:
            raise ValidationError(str(exc)) from None


def _figures(project) -> dict:
    figures = policy_figures(project)
    if figures is None:
        raise NotFound(
            f"Project {project.slug!r} has no routing policy; create one with PUT (a budget)."
        )
    return figures.as_dict()


class RoutingPolicyDetail(APIView):
    @extend_schema(responses={200: PolicyFiguresSerializer, **POLICY_ERRORS})
    def get(self, request, slug: str):
        """The live routing policy: its settings, state, budget spent / committed / left (in
        labels and comparisons), rounds, the router's cross-validated AUC and the expected
        label accuracy of the project as it stands."""
        project, _ = project_access(request, slug, EXPORT)
        return Response(_figures(project))

    @extend_schema(
        request=PolicySettingsSerializer,
        responses={200: PolicyFiguresSerializer, 201: PolicyFiguresSerializer, **POLICY_ERRORS},
    )
    def put(self, request, slug: str):
        """Create the policy (it needs a budget; 201) or change its settings (200)."""
        return self._save(request, slug, create=True)

    @extend_schema(
        request=PolicySettingsSerializer,
        responses={200: PolicyFiguresSerializer, **POLICY_ERRORS},
    )
    def patch(self, request, slug: str):
        """Change the policy's settings; the budget may not fall below what is committed."""
        return self._save(request, slug, create=False)

    def _save(self, request, slug: str, *, create: bool) -> Response:
        project, _ = project_access(request, slug, ADMIN)
        params = PolicySettingsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        exists = RoutingPolicy.objects.filter(project=project).exists()
        if not exists and not create:
            _figures(project)  # the 404
        try:
            policy_save(project=project, **params.validated_data)
        except PolicyError as exc:
            # policy_save refuses only budgets: none for a new policy, or one below what the
            # releases have committed.
            raise ValidationError({"budget": [str(exc)]}) from None
        return Response(_figures(project), status=200 if exists else status.HTTP_201_CREATED)


class _PolicyMove(APIView):
    move = ""  # routing.live.policy_state_set's action
    target = ""  # the state it leads to

    def _move(self, request, slug: str) -> Response:
        project, _ = project_access(request, slug, ADMIN)
        state = RoutingPolicy.objects.filter(project=project).values_list("state", flat=True)
        if not state:
            _figures(project)  # the 404
        # Already there: answered as done, so that a script may retry.
        if state[0] != self.target:
            try:
                policy_state_set(project=project, action=self.move)
            except PolicyError as exc:
                raise Conflict(str(exc)) from None
        return Response(_figures(project))


class RoutingPolicyStart(_PolicyMove):
    move, target = "start", PolicyState.RUNNING

    @extend_schema(request=None, responses={200: PolicyFiguresSerializer, **POLICY_ERRORS})
    def post(self, request, slug: str):
        """Start (or resume) the policy: a round is queued at once, then one whenever labels
        come in, until the budget is spent. Starting a running policy changes nothing."""
        return self._move(request, slug)


class RoutingPolicyPause(_PolicyMove):
    move, target = "pause", PolicyState.PAUSED

    @extend_schema(request=None, responses={200: PolicyFiguresSerializer, **POLICY_ERRORS})
    def post(self, request, slug: str):
        """Pause the policy: no more releases until it is started again (released comparisons
        still get their labels). Pausing a paused policy changes nothing."""
        return self._move(request, slug)


class RouterPriorSerializer(serializers.ModelSerializer):
    source_projects = serializers.SerializerMethodField(
        help_text="The source projects the caller belongs to (others are only counted)."
    )
    source_project_count = serializers.SerializerMethodField()

    class Meta:
        model = RouterPrior
        fields = [
            "id",
            "name",
            "version",
            "sha256",
            "columns",
            "source_projects",
            "source_project_count",
            "metrics",
            "created_at",
        ]

    def get_source_projects(self, prior: RouterPrior) -> list[str]:
        visible = self.context["visible_projects"]
        return [slug for slug in prior.source_projects if visible is None or slug in visible]

    def get_source_project_count(self, prior: RouterPrior) -> int:
        return len(prior.source_projects)


class RouterPriorList(generics.ListAPIView):
    """Router priors (`manage.py train_router`): routers fitted on other projects of this
    installation, each version with the features it reads and its cross-validated metrics.
    A policy names one by name (its latest version)."""

    serializer_class = RouterPriorSerializer
    pagination_class = NewestFirstPagination
    queryset = RouterPrior.objects.defer("model")

    def get_serializer_context(self):
        user = self.request.user
        # Outsiders may not learn which projects exist: only the caller's are named.
        visible = None
        if not getattr(user, "is_superuser", False):
            visible = set(projects_for_user(user).values_list("slug", flat=True))
        return {**super().get_serializer_context(), "visible_projects": visible}
