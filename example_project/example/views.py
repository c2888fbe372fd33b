from importlib import resources

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_callauth.models import CallAuthPhone


@login_required
def home(request: HttpRequest) -> HttpResponse:
    phones = CallAuthPhone.objects.filter(user=request.user).values_list("phone", flat=True)
    return render(request, "example/home.html", {"phones": list(phones)})


def login_page(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    return render(request, "registration/login.html")


def openapi(request: HttpRequest) -> HttpResponse:
    """The JSON API's OpenAPI document, as shipped in the package."""
    document = resources.files("django_callauth").joinpath("openapi.json").read_bytes()
    return HttpResponse(document, content_type="application/json")
