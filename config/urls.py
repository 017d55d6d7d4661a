from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Hybrid preferences admin"
admin.site.site_title = "Hybrid preferences"

urlpatterns = [
    path("admin/", admin.site.urls),
    # login, logout (POST), password change; templates/registration/ styles the login page.
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/api-tokens/", include("annotator.api.page_urls")),
    path("api/v1/", include("annotator.api.urls")),
    path("", include("annotator.urls")),
    path("", include("scoring.urls")),
    path("", include("routing.urls")),
]
