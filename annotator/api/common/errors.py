"""One error body for every API failure: `{"detail": "...", "errors": [{line, field, problem}]}`.

`errors` lists what was wrong item by item: import errors keep their line numbers (the same
FILE:LINE: field: problem entries the command prints), validation errors name their field and have
no line.
"""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from annotator.dataio.importer import ImportFailed
from annotator.dataio.records import LineError


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ErrorItemSerializer(serializers.Serializer):
    line = serializers.JSONField(allow_null=True, help_text="Line number (or 'record N').")
    field = serializers.CharField(allow_null=True)
    problem = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ErrorItemSerializer(many=True)
    error_count = serializers.IntegerField(required=False)


# The usual meaning of each error status; an endpoint may say more (`error_responses`).
ERROR_MEANINGS = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "The caller's role does not allow it",
    404: "No such project (or not a member)",
    409: "A run of this kind is already active",
    413: "The body is over the size limit",
}


def error_responses(*codes: int, **meanings: str) -> dict[int, OpenApiResponse]:
    """The OpenAPI responses of an endpoint's error statuses, all with the one error body;
    `meanings` overrides a status's text (keyword `e404="No such run"`)."""
    texts = {**ERROR_MEANINGS, **{int(key[1:]): text for key, text in meanings.items()}}
    return {code: OpenApiResponse(ErrorSerializer, description=texts[code]) for code in codes}


def error_body(detail: str, errors: list[dict] | None = None, **extra) -> dict:
    return {"detail": detail, "errors": errors or [], **extra}


def line_error_item(error: LineError) -> dict:
    return {"line": error.line, "field": error.field, "problem": error.problem}


def line_error_parse(text: str, source: str) -> dict:
    """A stored `SOURCE:LINE: field: problem` string (background jobs keep them as text) back
    into its parts; the source name is known, so a colon inside it does no harm."""
    rest = text[len(source) + 1 :] if text.startswith(source + ":") else text
    parts = rest.split(": ", 2)
    if len(parts) == 3 and (parts[0].isdigit() or parts[0].startswith("record ")):
        line, field, problem = parts
        return {"line": int(line) if line.isdigit() else line, "field": field, "problem": problem}
    # An error about the whole file (unreadable, gone): no line, no field.
    return {"line": None, "field": None, "problem": rest.strip()}


def import_failed_body(failure: ImportFailed) -> dict:
    return error_body(
        f"import failed with {failure.error_count} errors; nothing was written",
        [line_error_item(e) for e in failure.errors],
        error_count=failure.error_count,
    )


def _field_errors(detail, prefix: str = "") -> list[dict]:
    """Flatten DRF's nested validation detail into {field, problem} items."""
    items = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            items += _field_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        for value in detail:
            items += _field_errors(value, prefix)
    else:
        items.append({"line": None, "field": prefix or None, "problem": str(detail)})
    return items


def api_exception_handler(exc, context):
    if isinstance(exc, ImportFailed):
        return Response(import_failed_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The request body is larger than the limit: {exc}")
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        response.data = error_body("Invalid input.", _field_errors(exc.detail))
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = error_body(str(detail))
    return response
