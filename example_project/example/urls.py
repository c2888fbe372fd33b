from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from . import bench, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_page, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("callauth/", include("django_callauth.urls")),
    path("openapi.json", views.openapi, name="openapi"),
    path("admin/", admin.site.urls),
]

# With DEBUG = True, the static files under any server: runserver serves them itself, uvicorn does not.
urlpatterns += staticfiles_urlpatterns()

if settings.EXAMPLE_BENCHMARK_VIEWS:  # the yardsticks of benchmarks/polls.py, never on a real site
    urlpatterns += bench.urlpatterns
