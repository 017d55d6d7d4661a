"""The request id in responses, so that a user's report or a proxy's log leads to our log lines."""

import structlog
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdHeaderMiddleware:
    """Copies the id that django-structlog's RequestMiddleware bound for this request (and puts
    on every log line of it) into the response. Goes right after that middleware, which clears the
    id once the response has passed through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response[REQUEST_ID_HEADER] = request_id
        return response
