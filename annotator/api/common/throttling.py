from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from annotator.models import ApiToken


class TokenRateThrottle(UserRateThrottle):
    """Rate limit for scripts (token clients), per user; browser sessions are not limited."""

    scope = "token"

    def get_rate(self):
        # Read when used, not when the class is defined, so that the setting can change.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return True
        return super().allow_request(request, view)
