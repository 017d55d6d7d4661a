from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from annotator.api.common.docs import ApiDocs

admin.site.site_header = "Hybrid preferences admin"
admin.site.site_title = "Hybrid preferences"

# /api/v1/: each app's own endpoints, one namespace (`api:`), one schema and its documentation.
api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocs.as_view(url_name="api:schema"), name="docs"),
    path("", include("annotator.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("routing.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # login, logout (POST), password change; templates/registration/ styles the login page.
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/api-tokens/", include("annotator.api.page_urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("", include("annotator.urls")),
    path("", include("scoring.urls")),
    path("", include("routing.urls")),
]
