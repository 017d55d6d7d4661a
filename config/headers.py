"""Headers every response carries that neither Django nor django-csp sets: a Permissions-Policy
(the site uses no camera, microphone, location...), and `Cache-Control: private, no-store` on
whatever a login or a token opened (pages, API responses, exports), so that neither a shared
cache nor the browser's back button after a logout hands them to someone else."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


def _is_personal(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return (
        (user is not None and user.is_authenticated)
        or "HTTP_AUTHORIZATION" in request.META
        or request.path.startswith(settings.API_PATH_PREFIX)
    )


class ResponseHeadersMiddleware:
    """Goes right after SecurityMiddleware, so that static files (WhiteNoise answers them before
    the rest of the stack) get the Permissions-Policy too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        if _is_personal(request):
            # A view's own cache time for its images (private already) is kept; all else is
            # never stored.
            if "Cache-Control" in response:
                patch_cache_control(response, private=True)
            else:
                patch_cache_control(response, private=True, no_store=True)
        return response
