from django.urls import path

from . import phone_views, views, webhooks
from .models import FlowPurpose

LINK = {"purpose": FlowPurpose.LINK}

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
    # A logged-in user's phones; adding one is verified by a call, like a login.
    path("phones/", phone_views.phones, name="phones"),
    path("phones/add/", phone_views.phone_add, name="phone_add"),
    path("phones/<int:link_id>/remove/", phone_views.phone_remove, name="phone_remove"),
    path("phones/verify/", views.challenge, LINK, name="link_challenge"),
    path("phones/verify/status/", views.status, LINK, name="link_status"),
    path("phones/verify/complete/", phone_views.link_complete, name="link_complete"),
    path("phones/verify/sandbox/call/", views.sandbox_call, LINK, name="link_sandbox_call"),
]
