import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Checked here, where a web server starts, not in settings: workers and commands serve no HTTP and
# need no host names. Without it Django would answer every request with 400 Bad Request.
if not settings.DEBUG and not settings.ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. Set the ALLOWED_HOSTS environment variable to the host names "
        "this site is served under, comma-separated (or DEBUG=1 for local development)."
    )
