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
