from django.contrib import admin
from django.urls import path

admin.site.site_header = "Hybrid preferences admin"
admin.site.site_title = "Hybrid preferences"

urlpatterns = [
    path("admin/", admin.site.urls),
]
