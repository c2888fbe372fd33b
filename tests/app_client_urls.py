"""The example site's URLs beside a site's own DRF API, as an app calls it after logging in by call."""

from typing import Any

from django.urls import path
from example import urls as example_urls
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from django_callauth.contrib.drf import SessionTokenAuthentication


class Me(APIView):
    """Who the credentials say the caller is; nobody gets past IsAuthenticated without them."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username()})


def me(*authentication: Any) -> Any:
    return Me.as_view(authentication_classes=list(authentication))


urlpatterns = [
    *example_urls.urlpatterns,
    path("api/me/token/", me(TokenAuthentication), name="me_token"),
    path("api/me/jwt/", me(JWTAuthentication), name="me_jwt"),
    path("api/me/session-token/", me(SessionTokenAuthentication), name="me_session_token"),
]
