from rest_framework.throttling import UserRateThrottle

from annotator.models import ApiToken


class TokenRateThrottle(UserRateThrottle):
    """Rate limit for scripts (token clients), per user; browser sessions are not limited."""

    scope = "token"

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True
        return super().allow_request(request, view)
