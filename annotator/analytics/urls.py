from django.contrib.auth.decorators import login_required
from django.urls import path

from annotator.analytics import views

app_name = "analytics"

urlpatterns = [
    path("p/<slug:slug>/analytics/", login_required(views.analytics_page), name="page"),
    path(
        "p/<slug:slug>/analytics/refresh/",
        login_required(views.analytics_refresh),
        name="refresh",
    ),
    path(
        "p/<slug:slug>/analytics/<slug:name>.png",
        login_required(views.analytics_plot),
        name="plot",
    ),
]
