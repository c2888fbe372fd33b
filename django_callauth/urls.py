from django.urls import path

from . import views, webhooks

app_name = "callauth"

urlpatterns = [
    path("start/", views.start, name="start"),
    path("challenge/", views.challenge, name="challenge"),
    path("status/", views.status, name="status"),
    path("complete/", views.complete, name="complete"),
    path("webhook/<uuid:flow_id>/<str:secret>/", webhooks.webhook, name="webhook"),
    # One URL per provider with an account-wide callback, registered in its account by hand.
    path("callback/<str:provider_name>/", webhooks.callback, name="callback"),
    # Always routed, so URLs never depend on settings at import; the view answers
    # 404 unless the sandbox provider is configured.
    path("sandbox/call/", views.sandbox_call, name="sandbox_call"),
]
