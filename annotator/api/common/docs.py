from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularSwaggerSplitView


# Swagger UI's stylesheet draws its icons from data: URIs; everything else is our own static files
# (drf-spectacular-sidecar), and the page's set-up script is a separate file, not inline.
@method_decorator(csp_update({"img-src": ["data:"]}), name="get")
class ApiDocs(SpectacularSwaggerSplitView):
    """The browsable API documentation, built from /api/v1/schema/."""

    template_name = "annotator/api_docs.html"
