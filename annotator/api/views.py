"""API views for projects, comparisons, import and export. Thin: check the caller's role,
validate, call one service or selector, respond."""

import tempfile
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.analytics.report import project_report_cached
from annotator.analytics.tasks import analytics_refresh_task
from annotator.api import serializers as s
from annotator.api.common.errors import PayloadTooLarge, error_responses
from annotator.api.common.pagination import NewestFirstPagination
from annotator.api.common.permissions import ADMIN, EXPORT, READ, project_access
from annotator.api.common.renderers import (
    JSONLinesRenderer,
    MarkdownRenderer,
    ParquetRenderer,
    ZipRenderer,
)
from annotator.api.dataset_card import dataset_card_markdown
from annotator.api.filters import COMPARISON_FILTER_PARAMETERS, ComparisonFilter
from annotator.api.project_settings import projects_with_settings
from annotator.api.services import project_create_with_admin, project_settings_update
from annotator.dataio.export import EXPORT_FORMATS, EXPORT_MEDIA, dataset_export_chunks
from annotator.dataio.formats import ReadOptions
from annotator.dataio.importer import comparisons_import
from annotator.dataio.jobs import READ_ERRORS, import_job_create
from annotator.models import Comparison, HumanLabel, ImportJob, LMLabel, Membership, Project, Role

_errors = error_responses


# --- Projects -------------------------------------------------------------------------------


class ProjectList(generics.ListCreateAPIView):
    serializer_class = s.ProjectSerializer

    def get_queryset(self):
        user = self.request.user
        projects = projects_with_settings(Project.objects.all())
        if getattr(self, "swagger_fake_view", False):
            return projects.none()
        if not user.is_superuser:
            projects = projects.filter(memberships__user=user, memberships__is_active=True)
        return projects

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "GET":
            context["roles"] = dict(
                Membership.objects.filter(user=self.request.user, is_active=True).values_list(
                    "project_id", "role"
                )
            )
        return context

    @extend_schema(responses={201: s.ProjectSerializer, **_errors(400, 401, 403)})
    def post(self, request):
        """Create a project (site staff); its creator becomes its first admin."""
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied("Only site staff can create projects.")
        serializer = s.ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create_with_admin(user=request.user, **serializer.validated_data)
        context = {"roles": {project.pk: Role.ADMIN}}
        return Response(s.ProjectSerializer(project, context=context).data, status=201)


class ProjectDetail(APIView):
    @extend_schema(responses={200: s.ProjectSerializer, **_errors(401, 404)})
    def get(self, request, slug: str):
        project, role = project_access(request, slug, READ)
        return Response(s.ProjectSerializer(project, context={"roles": {project.pk: role}}).data)

    @extend_schema(
        request=s.ProjectUpdateSerializer,
        responses={200: s.ProjectSerializer, **_errors(400, 401, 403, 404)},
    )
    def patch(self, request, slug: str):
        """Change a project's settings (project admins). New guidelines bump their version."""
        project, role = project_access(request, slug, ADMIN)
        serializer = s.ProjectUpdateSerializer(project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_settings_update(project=project, **serializer.validated_data)
        return Response(s.ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


# --- Comparisons ----------------------------------------------------------------------------


def _comparisons_filtered(request, project: Project, role: str):
    if role == Role.ANNOTATOR and any(
        request.query_params.get(name) for name in ComparisonFilter.LABEL_FILTERS
    ):
        raise PermissionDenied("Annotators cannot filter on other people's or the LM's labels.")
    if role == Role.ANNOTATOR:
        for name in ComparisonFilter.ANNOTATOR_REFUSED:
            if name in request.query_params:
                raise ValidationError({name: ["Annotators cannot filter on this."]})
    filterset = ComparisonFilter(
        request.query_params, queryset=Comparison.objects.filter(project=project)
    )
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


class ComparisonList(generics.ListAPIView):
    serializer_class = s.ComparisonSerializer
    filter_backends = []  # ComparisonFilter runs in get_queryset, after the role check

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Comparison.objects.none()
        project, self.role = project_access(self.request, self.kwargs["slug"], READ)
        return _comparisons_filtered(self.request, project, self.role)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "role": getattr(self, "role", None)}

    @extend_schema(
        parameters=COMPARISON_FILTER_PARAMETERS,
        responses={200: s.ComparisonSerializer(many=True), **_errors(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ComparisonDetail(APIView):
    @extend_schema(responses={200: s.ComparisonDetailSerializer, **_errors(401, 404)})
    def get(self, request, slug: str, pk: int):
        """A comparison with its labels: all of them for admins and viewers; annotators see
        only their own human labels and no LM labels."""
        project, role = project_access(request, slug, READ)
        humans = HumanLabel.objects.select_related("annotator").order_by("id")
        lms = LMLabel.objects.order_by("id")
        if role == Role.ANNOTATOR:
            humans, lms = humans.filter(annotator=request.user), lms.none()
        comparison = get_object_or_404(
            Comparison.objects.prefetch_related(
                Prefetch("human_labels", queryset=humans), Prefetch("lm_labels", queryset=lms)
            ),
            project=project,
            pk=pk,
        )
        return Response(s.ComparisonDetailSerializer(comparison, context={"role": role}).data)


# --- Import ---------------------------------------------------------------------------------


class JSONLinesParser(BaseParser):
    """Declares the raw-body import types; the view streams the body itself."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


class GzipParser(JSONLinesParser):
    media_type = "application/gzip"


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _body_to_file(request, limit: int):
    """The raw request body, copied to a temporary file in chunks (never held in memory)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (returned open, closed by the caller)
    size = 0
    while chunk := request.stream.read(1 << 20) if request.stream is not None else b"":
        size += len(chunk)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"The import is larger than the limit of {limit} bytes.")
        spool.write(chunk)
    spool.seek(0)
    return spool, size


class ProjectImport(APIView):
    parser_classes = [JSONLinesParser, GzipParser, MultiPartParser]

    @extend_schema(
        parameters=[s.ImportParamsSerializer],
        request={
            "application/x-ndjson": OpenApiTypes.BINARY,
            "application/gzip": OpenApiTypes.BINARY,
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        },
        responses={
            200: OpenApiResponse(s.ImportSummarySerializer, description="Imported (synchronous)"),
            202: OpenApiResponse(
                s.ImportJobSerializer, description="Queued as a background job (large bodies)"
            ),
            **_errors(413, e413="Body over API_IMPORT_MAX_BYTES"),
            **_errors(400, 401, 403, 404),
        },
    )
    def post(self, request, slug: str):
        """Import comparisons (any import format, gzip allowed) from the body or a multipart
        `file`, all or nothing, with the command's line-numbered errors. Existing external ids
        are skipped, so repeating an import changes nothing. Bodies over
        API_IMPORT_SYNC_MAX_BYTES (or `background=true`) run in a worker: poll the job."""
        project, _ = project_access(request, slug, ADMIN)
        params = s.ImportParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        opts = params.validated_data
        limit = settings.API_IMPORT_MAX_BYTES
        length = _content_length(request)
        if length is not None and length > limit:
            raise PayloadTooLarge(f"The import is larger than the limit of {limit} bytes.")
        name, stream, size = _upload(request, opts.get("name"), slug, limit)
        try:
            if size == 0:
                hint = "" if length else " (send a Content-Length: chunked uploads are not read)"
                raise ValidationError({"body": [f"The request body is empty{hint}."]})
            background = opts["background"] == "true" or (
                opts["background"] == "auto" and size > settings.API_IMPORT_SYNC_MAX_BYTES
            )
            if background:
                return _import_queued(request, project, stream, name, opts)
            return _import_now(project, stream, name, opts)
        finally:
            stream.close()


def _upload(request, name: str | None, slug: str, limit: int):
    """(name, open binary stream, size) of the upload: a multipart `file` or the raw body."""
    if request.content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Send the data as a multipart field named 'file'."]})
        return name or Path(upload.name).name, upload.open("rb"), upload.size
    stream, size = _body_to_file(request, limit)
    return name or f"{slug}-upload.jsonl", stream, size


def _lm_judge(opts: dict) -> str | None:
    """`label_source=lm:JUDGE`: the judge whose label the dataset's preference becomes."""
    return opts["label_source"][3:] if opts["label_source"] != "human" else None


def _read_options(opts: dict, name: str) -> ReadOptions:
    return ReadOptions(
        label_name=name,
        lm_judge=_lm_judge(opts),
        pairing=opts["pairing"],
        pairing_seed=opts["pairing_seed"],
    )


def _import_queued(request, project: Project, stream, name: str, opts: dict) -> Response:
    """202 with the background job that will import the upload, and where to poll it."""
    try:
        job = import_job_create(
            project=project,
            stream=stream,
            source_name=name,
            fmt=opts["format"],
            update=opts["update"],
            options=_read_options(opts, name),
            user=request.user,
        )
    except ValueError as exc:
        raise ValidationError({"background": [str(exc)]}) from None
    body = s.ImportJobSerializer(job).data
    body["url"] = request.build_absolute_uri(reverse("api:import_job", args=[project.slug, job.pk]))
    return Response(body, status=status.HTTP_202_ACCEPTED)


def _import_now(project: Project, stream, name: str, opts: dict) -> Response:
    """The import's summary; an unreadable upload is a 400 (a failed import is one too, with its
    line-numbered errors, through the API's exception handler)."""
    try:
        summary = comparisons_import(
            project=project,
            stream=stream,
            source_name=name,
            fmt=opts["format"],
            update=opts["update"],
            options=_read_options(opts, name),
        )
    except READ_ERRORS as exc:
        raise ValidationError({"body": [f"The upload cannot be read: {exc}"]}) from None
    except ValueError as exc:
        raise ValidationError({"body": [str(exc)]}) from None
    return Response(summary.as_dict())


class ImportJobList(generics.ListAPIView):
    serializer_class = s.ImportJobSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        project, _ = project_access(self.request, self.kwargs["slug"], ADMIN)
        return ImportJob.objects.filter(project=project)


class ImportJobDetail(APIView):
    @extend_schema(responses={200: s.ImportJobSerializer, **_errors(401, 403, 404)})
    def get(self, request, slug: str, pk: int):
        """A background import: status (queued, running, succeeded, failed), the summary when it
        succeeded, the line-numbered errors when it failed (nothing is written then)."""
        project, _ = project_access(request, slug, ADMIN)
        job = get_object_or_404(ImportJob, project=project, pk=pk)
        return Response(s.ImportJobSerializer(job).data)


# --- Export ---------------------------------------------------------------------------------


class ProjectExport(APIView):
    renderer_classes = [JSONRenderer, JSONLinesRenderer, ParquetRenderer, ZipRenderer]

    @extend_schema(
        parameters=[
            s.ExportParamsSerializer,
            OpenApiParameter(
                "kind",
                enum=EXPORT_FORMATS,
                deprecated=True,
                description=s.EXPORT_KIND_ALIAS_HELP,
            ),
            *COMPARISON_FILTER_PARAMETERS,
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="JSON Lines, streamed (full, trl, multipref)"
            ),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A Parquet file, streamed (parquet)"
            ),
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The Hugging Face dataset directory as a zip, streamed (hf)",
            ),
            **_errors(400, 401, 403, 404),
        },
    )
    def get(self, request, slug: str):
        """Stream the dataset (`format=full`: every label; `trl`: prompt/chosen/rejected;
        `parquet`: the pairs with their provenance; `hf`: a Hugging Face dataset as a zip;
        `multipref`: MultiPref's rows), with the comparison filters and the options of
        export_dataset. Memory stays flat at any size."""
        project, role = project_access(request, slug, EXPORT)
        params = s.ExportParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        export_format = params.validated_data["format"]
        comparisons = _comparisons_filtered(request, project, role)
        try:
            chunks = dataset_export_chunks(
                project=project,
                format=export_format,
                options=params.validated_data["options"],
                comparisons=comparisons,
            )
        except ValueError as exc:  # confidence asked before the first analytics report
            raise ValidationError({"with_confidence": [str(exc)]}) from None
        media_type, extension = EXPORT_MEDIA[export_format]
        response = StreamingHttpResponse(chunks, content_type=media_type)
        filename = f"{project.slug}-{export_format}-{date.today().isoformat()}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Accel-Buffering"] = "no"  # proxies: pass rows on as they come
        return response


class ProjectAnalyticsReport(APIView):
    @extend_schema(
        responses={
            200: s.AnalyticsSerializer,
            204: OpenApiResponse(description="No report yet: nothing has been computed"),
            **_errors(401, 403, 404),
        }
    )
    def get(self, request, slug: str):
        """The cached quality report: human-human agreement per aspect with bootstrap
        intervals, each judge next to the humans, annotator competence (Dawid-Skene), model
        leaderboards and distributions; `stale` while labels changed after it was computed."""
        project, _ = project_access(request, slug, EXPORT)
        cached = project_report_cached(project=project)
        if cached is None or cached.report is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.AnalyticsSerializer(cached).data)


class ProjectAnalyticsRefresh(APIView):
    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(description="A refresh is queued"),
            **_errors(401, 403, 404),
        },
    )
    def post(self, request, slug: str):
        """Queue a recomputation of the report on a worker (admins)."""
        project, _ = project_access(request, slug, ADMIN)
        analytics_refresh_task.delay(project.pk)
        return Response({"detail": "A refresh is queued."}, status=status.HTTP_202_ACCEPTED)


class DatasetCard(APIView):
    renderer_classes = [JSONRenderer, MarkdownRenderer]

    @extend_schema(
        responses={
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="README.md"),
            **_errors(401, 403, 404),
        }
    )
    def get(self, request, slug: str):
        """A README (markdown) describing the export: counts by label source, agreement, judge
        versions, guidelines version, the routing run, the licence."""
        project, _ = project_access(request, slug, EXPORT)
        response = HttpResponse(
            dataset_card_markdown(project=project), content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = f'inline; filename="{project.slug}-README.md"'
        return response
