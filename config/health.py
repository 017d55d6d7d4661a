"""Liveness (`/healthz`) and readiness (`/readyz`) probes for load balancers and orchestrators.

`HealthProbeMiddleware` answers them first in the middleware stack, before host validation (a
probe calls the container by its address, which ALLOWED_HOSTS rightly does not list), before the
https redirect (probes speak plain http inside the network) and before request logging (probes
come every few seconds). Responses name which dependency failed, never why: the reasons, which may
carry host names, go to the log.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


def database_check() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def broker_check() -> None:
    from config.celery import app

    with app.connection_for_write() as connection:
        # One attempt: a probe must answer within its own timeout, not retry for minutes.
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)


def cache_check() -> None:
    cache.get("readyz")


def _readiness_checks() -> dict[str, Callable[[], None]]:
    checks = {"database": database_check, "broker": broker_check}
    # A per-process memory cache cannot be down; a shared one (CACHE_URL) can.
    if not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        checks["cache"] = cache_check
    return checks


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and serving requests; says nothing about its dependencies."""
    return JsonResponse({"status": OK})


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready for traffic: the database, the broker (and a shared cache) answer."""
    results = {}
    for name, check in _readiness_checks().items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not ready"
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = UNAVAILABLE
        else:
            results[name] = OK
    ready = all(result == OK for result in results.values())
    return JsonResponse(
        {"status": OK if ready else UNAVAILABLE, "checks": results}, status=200 if ready else 503
    )


PROBES = {"/healthz": healthz, "/readyz": readyz}


class HealthProbeMiddleware:
    """Serves the probes ahead of every other middleware (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            response = probe(request)
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)
