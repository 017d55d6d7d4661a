"""REST endpoints for judge runs and reward-model runs (under /api/v1/projects/<slug>/).

Start, status, list, the labels a judge run made, reward metrics and checkpoint download.
Admins start and stop runs; viewers read them; annotators see none (they are not shown LM labels).
"""

import tempfile
import zipfile
from pathlib import Path

from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api.common.errors import Conflict, error_responses
from annotator.api.common.pagination import NewestFirstPagination
from annotator.api.common.permissions import ADMIN, EXPORT, project_access
from annotator.api.common.renderers import TextRenderer
from annotator.api.common.strict import UnknownFieldsRefused
from annotator.api.serializers import LMLabelSerializer
from annotator.models import LMLabel, Project
from scoring.judging.runs import (
    DEMO_JUDGE,
    JudgeRunActive,
    judge_demo,
    judge_run_resume,
    judge_run_start,
)
from scoring.models import Judge, JudgeRun, RewardModelRun
from scoring.training.runs import (
    HYPERPARAMETERS,
    RewardRunActive,
    reward_run_cancel,
    reward_run_start,
)


def _errors(*codes: int) -> dict:
    return error_responses(*codes, e404="No such project or run")


# --- Judge runs -----------------------------------------------------------------------------


class JudgeRunSerializer(serializers.ModelSerializer):
    judge = serializers.CharField(source="judge.name")
    eta_seconds = serializers.FloatField(allow_null=True)

    class Meta:
        model = JudgeRun
        fields = [
            "id",
            "judge",
            "judge_version",
            "status",
            "total",
            "done",
            "pairs_per_second",
            "eta_seconds",
            "limit",
            "device",
            "error",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]


class JudgeRunStartSerializer(UnknownFieldsRefused, serializers.Serializer):
    judge = serializers.CharField(
        required=False,
        max_length=200,
        help_text="A judge's name (default: the project's primary judge, else the demo judge).",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    comparison_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=100_000,
        help_text="Only these comparisons of the project.",
    )


class JudgeLabelSerializer(LMLabelSerializer):
    comparison = serializers.IntegerField(source="comparison_id")
    external_id = serializers.CharField(source="comparison.external_id")

    class Meta(LMLabelSerializer.Meta):
        fields = ["comparison", "external_id", *LMLabelSerializer.Meta.fields]


class JudgeRunList(generics.ListAPIView):
    serializer_class = JudgeRunSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return JudgeRun.objects.none()
        project, _ = project_access(self.request, self.kwargs["slug"], EXPORT)
        return JudgeRun.objects.filter(project=project).select_related("judge")

    @extend_schema(
        request=JudgeRunStartSerializer,
        responses={201: JudgeRunSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, slug: str):
        """Start a judge run on the gpu queue: it labels what this judge version has not."""
        project, _ = project_access(request, slug, ADMIN)
        params = JudgeRunStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        name = params.validated_data.get("judge") or project.primary_judge
        if not name or name == DEMO_JUDGE:
            judge = judge_demo()
        else:
            judge = Judge.objects.filter(name=name).first()
        if judge is None:
            raise ValidationError({"judge": [f"no judge named {name!r}"]})
        ids = params.validated_data.get("comparison_ids")
        if ids is not None:
            found = set(project.comparisons.filter(id__in=ids).values_list("id", flat=True))
            missing = sorted(set(ids) - found)
            if missing:
                raise ValidationError({"comparison_ids": [f"not in this project: {missing[:20]}"]})
        try:
            run = judge_run_start(
                project=project,
                judge=judge,
                comparison_ids=ids,
                limit=params.validated_data.get("limit"),
            )
        except JudgeRunActive as exc:
            raise Conflict(str(exc)) from None
        return Response(JudgeRunSerializer(run).data, status=status.HTTP_201_CREATED)


def _judge_run(request, slug: str, pk: int, need: str) -> JudgeRun:
    project, _ = project_access(request, slug, need)
    return get_object_or_404(JudgeRun.objects.select_related("judge"), project=project, pk=pk)


class JudgeRunDetail(APIView):
    @extend_schema(responses={200: JudgeRunSerializer, **_errors(401, 403, 404)})
    def get(self, request, slug: str, pk: int):
        """A run's status and progress (done/total, pairs/s, ETA, heartbeat, error)."""
        return Response(JudgeRunSerializer(_judge_run(request, slug, pk, EXPORT)).data)


class JudgeRunResume(APIView):
    @extend_schema(request=None, responses={200: JudgeRunSerializer, **_errors(401, 403, 404, 409)})
    def post(self, request, slug: str, pk: int):
        """Queue a failed run again; it labels only what it had not finished."""
        run = _judge_run(request, slug, pk, ADMIN)
        try:
            run = judge_run_resume(run_id=run.pk)
        except JudgeRunActive as exc:
            raise Conflict(str(exc)) from None
        return Response(JudgeRunSerializer(JudgeRun.objects.get(pk=run.pk)).data)


class JudgeRunLabels(generics.ListAPIView):
    """The labels of the run's judge version on the run's comparisons (its decisions)."""

    serializer_class = JudgeLabelSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LMLabel.objects.none()
        run = _judge_run(self.request, self.kwargs["slug"], self.kwargs["pk"], EXPORT)
        labels = LMLabel.objects.filter(
            comparison__project_id=run.project_id,
            judge_name=run.judge.name,
            judge_version=run.judge_version,
        ).select_related("comparison")
        if run.comparison_ids is not None:
            labels = labels.filter(comparison_id__in=run.comparison_ids)
        return labels


# --- Reward-model runs ----------------------------------------------------------------------


class RewardRunSerializer(serializers.ModelSerializer):
    eval_project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    checkpoint = serializers.SerializerMethodField()

    class Meta:
        model = RewardModelRun
        fields = [
            "id",
            "base_model",
            "label_source",
            "eval_project",
            *HYPERPARAMETERS,
            "status",
            "cancel_requested",
            "progress",
            "n_train",
            "n_validation",
            "pairs_per_second",
            "labels_total",
            "labels_done",
            "final_metrics",
            "device",
            "error",
            "checkpoint",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]

    def get_checkpoint(self, run) -> bool:
        """Whether a checkpoint can be downloaded (a run that failed while labelling its
        project keeps the one it saved)."""
        return bool(run.checkpoint_dir)


class RewardRunDetailSerializer(RewardRunSerializer):
    class Meta(RewardRunSerializer.Meta):
        fields = [*RewardRunSerializer.Meta.fields, "metrics"]


class RewardRunStartSerializer(UnknownFieldsRefused, serializers.ModelSerializer):
    eval_project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.none(),
        required=False,
        allow_null=True,
        help_text="A held-out project of yours (e.g. gold human labels) scored at the end.",
    )

    scheduler = serializers.ChoiceField(choices=["linear", "cosine"], default="linear")

    class Meta:
        model = RewardModelRun
        fields = ["base_model", "label_source", "eval_project", *HYPERPARAMETERS]
        # The trainer's sane ranges; the database keeps only what it must.
        extra_kwargs = {
            "lr": {"min_value": 0.0, "max_value": 1.0},
            "epochs": {"min_value": 1, "max_value": 100},
            "batch_size": {"min_value": 1, "max_value": 4096},
            "grad_accum": {"min_value": 1, "max_value": 1024},
            "max_length": {"min_value": 8, "max_value": 32768},
            "warmup_ratio": {"min_value": 0.0, "max_value": 1.0},
            "weight_decay": {"min_value": 0.0, "max_value": 1.0},
            "center_coef": {"min_value": 0.0, "max_value": 10.0},
            "seed": {"min_value": 0, "max_value": 2**31 - 1},
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        mine = Project.objects.all()
        if user is not None and not user.is_superuser:
            mine = mine.filter(Q(memberships__user=user, memberships__is_active=True)).distinct()
        self.fields["eval_project"].queryset = mine


class RewardRunList(generics.ListAPIView):
    serializer_class = RewardRunSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RewardModelRun.objects.none()
        project, _ = project_access(self.request, self.kwargs["slug"], EXPORT)
        return RewardModelRun.objects.filter(project=project).select_related("eval_project")

    @extend_schema(
        request=RewardRunStartSerializer,
        responses={201: RewardRunDetailSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, slug: str):
        """Train a reward model on the project's labels (gpu queue); one active run per project."""
        project, _ = project_access(request, slug, ADMIN)
        params = RewardRunStartSerializer(data=request.data, user=request.user)
        params.is_valid(raise_exception=True)
        try:
            run = reward_run_start(project=project, **params.validated_data)
        except RewardRunActive as exc:
            raise Conflict(str(exc)) from None
        return Response(RewardRunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


def _reward_run(request, slug: str, pk: int, need: str) -> RewardModelRun:
    project, _ = project_access(request, slug, need)
    return get_object_or_404(RewardModelRun, project=project, pk=pk)


class RewardRunDetail(APIView):
    @extend_schema(responses={200: RewardRunDetailSerializer, **_errors(401, 403, 404)})
    def get(self, request, slug: str, pk: int):
        """Status, progress, the logged loss/accuracy series and the final metrics."""
        return Response(RewardRunDetailSerializer(_reward_run(request, slug, pk, EXPORT)).data)


class RewardRunCancel(APIView):
    @extend_schema(
        request=None, responses={200: RewardRunDetailSerializer, **_errors(401, 403, 404)}
    )
    def post(self, request, slug: str, pk: int):
        """Stop a run: a queued one now, a running one at its next step."""
        run = _reward_run(request, slug, pk, ADMIN)
        return Response(RewardRunDetailSerializer(reward_run_cancel(run_id=run.pk)).data)


class ZipRenderer(TextRenderer):
    media_type = "application/zip"
    format = "zip"


class RewardRunCheckpoint(APIView):
    renderer_classes = [JSONRenderer, ZipRenderer]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="model.safetensors, tokenizer, card.json"
            ),
            **_errors(401, 403, 404),
        }
    )
    def get(self, request, slug: str, pk: int):
        """The trained checkpoint as a zip (load it with transformers or `score_pairs`)."""
        run = _reward_run(request, slug, pk, EXPORT)
        directory = Path(run.checkpoint_dir) if run.checkpoint_dir else None
        if directory is None:
            raise NotFound(f"reward run #{run.pk} has no checkpoint ({run.status})")
        if not directory.is_dir():
            raise NotFound(f"the checkpoint of reward run #{run.pk} is not on this server")
        # Written to a temporary file (weights are already compressed; stored, not deflated) and
        # streamed from there: memory does not grow with the model.
        archive = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as out:
            for file in sorted(directory.rglob("*")):
                if file.is_file():
                    out.write(file, arcname=f"reward-run-{run.pk}/{file.relative_to(directory)}")
        archive.seek(0)
        return FileResponse(
            archive,
            as_attachment=True,
            filename=f"{run.project.slug}-reward-run-{run.pk}.zip",
            content_type="application/zip",
        )
