from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("p/<slug:slug>/routing/", views.routing_panel, name="panel"),
]
