from django.urls import include, path
from example.urls import urlpatterns as example_urls

urlpatterns = [
    *example_urls,
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
]
