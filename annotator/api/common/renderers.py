import orjson
from rest_framework.renderers import BaseRenderer


class TextRenderer(BaseRenderer):
    """Successful responses of these views are written directly (streamed or plain text); what
    reaches a renderer is an error body, which is written as JSON."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        return orjson.dumps(data)


class JSONLinesRenderer(TextRenderer):
    media_type = "application/x-ndjson"
    format = "jsonl"


class MarkdownRenderer(TextRenderer):
    media_type = "text/markdown"
    format = "md"


class ParquetRenderer(TextRenderer):
    media_type = "application/vnd.apache.parquet"
    format = "parquet"


class ZipRenderer(TextRenderer):
    media_type = "application/zip"
    format = "zip"
