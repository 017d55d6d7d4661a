from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Hybrid preferences admin"
admin.site.site_title = "Hybrid preferences"

urlpatterns = [
    path("admin/", admin.site.urls),
    # login, logout (POST), password change; templates/registration/ styles the login page.
    path("accounts/", include("django.contrib.auth.urls")),
    # Until the annotator pages exist, the admin is the way in.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
