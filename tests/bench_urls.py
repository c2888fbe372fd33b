"""The callauth URLs with the example's bench views beside them, as EXAMPLE_BENCHMARK_VIEWS=1 mounts them."""

from django.urls import include, path
from example import bench

urlpatterns = [path("callauth/", include("django_callauth.urls")), *bench.urlpatterns]
