from django.urls import path

from . import views

app_name = "callauth"

urlpatterns = [
    path("start/", views.start, name="start"),
    path("challenge/", views.challenge, name="challenge"),
    path("status/", views.status, name="status"),
    path("complete/", views.complete, name="complete"),
    path("webhook/<uuid:flow_id>/<str:secret>/", views.webhook, name="webhook"),
    # Always routed, so URLs never depend on settings at import; the view answers
    # 404 unless the sandbox provider is configured.
    path("sandbox/call/", views.sandbox_call, name="sandbox_call"),
]
