"""The shipped OpenAPI document: valid, served by the example site, and true of the API.

Schemathesis fuzzes every documented operation of the example site in sandbox mode over
loopback: no answer may be a 5xx, and every answer must match the document (status,
content type, headers, body). Its CLI, as people run it, tests every operation
anonymously; its Python API (Hypothesis strategies) then tests the phones operations
logged in (they answer anonymous clients only 401), with a client that keeps the session
cookie, which changes at every start (invariant 13). (Schemathesis's own pytest plugin
fails on pytest 9.2: ``Function._nodeid``.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

pytestmark = pytest.mark.openapi

#: Django takes any 32-character alphanumeric cookie as the CSRF secret, and the same value in the header.
CSRF_TOKEN = "openapiopenapiopenapiopenapiopen"
MAX_EXAMPLES = 25
PHONES = "^/callauth/phones/"
APP_PHONES = "^/callauth/app/v1/phones/"


def _document() -> dict:
    return json.loads(resources.files("django_callauth").joinpath("openapi.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def site(example_sites: Callable[..., str]) -> str:
    # A site of its own (its own database): the fuzzing makes accounts and flows no other test should meet.
    return example_sites(CALLAUTH_LOG_LEVEL="WARNING")


def test_the_document_is_valid_openapi_3_1() -> None:
    import schemathesis

    document = _document()
    assert document["openapi"].startswith("3.1.")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}
    assert {
        "POST /callauth/start/",
        "GET /callauth/challenge/",
        "GET /callauth/status/",
        "POST /callauth/complete/",
        "POST /callauth/sandbox/call/",
        "GET /callauth/phones/",
        "POST /callauth/phones/add/",
        "POST /callauth/phones/{link_id}/remove/",
        "GET /callauth/phones/verify/status/",
        "POST /callauth/phones/verify/complete/",
        "POST /callauth/app/v1/start/",
        "GET /callauth/app/v1/status/",
        "POST /callauth/app/v1/complete/",
        "POST /callauth/app/v1/sandbox/call/",
        "GET /callauth/app/v1/phones/",
        "POST /callauth/app/v1/phones/add/",
        "POST /callauth/app/v1/phones/{link_id}/remove/",
        "GET /callauth/app/v1/phones/verify/status/",
        "POST /callauth/app/v1/phones/verify/complete/",
        "POST /callauth/app/v1/phones/verify/sandbox/call/",
    } <= operations


def test_every_error_is_the_error_object() -> None:
    document = _document()
    assert document["components"]["schemas"]["Error"] == {
        "type": "object",
        "description": "Every error of every endpoint.",
        "properties": {
            "error": {"type": "string", "description": "A stable code for programs, e.g. `invalid_phone`."},
            "message": {"type": "string", "description": "A translated text to show the user."},
        },
        "required": ["error", "message"],
        "additionalProperties": False,
    }
    responses = document["components"]["responses"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                response = responses.get(response.get("$ref", "").rsplit("/", 1)[-1], response)
                if not status.startswith(("4", "5")):
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_example_site_serves_the_document(site: str) -> None:
    response = requests.get(site + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == _document()


def _schemathesis(site: str, folder: Path, name: str, cookie: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        site + "/openapi.json",
        "--checks=all",
        # "Valid data accepted" cannot hold: a valid poll or finish of a session with no flow is no_flow 400.
        "--exclude-checks=positive_data_acceptance",
        f"--max-examples={MAX_EXAMPLES}",
        "--seed=20261128",
        "--generation-database=none",
        # The session and CSRF headers below are the client's, never generated.
        "--generation-with-security-parameters=false",
        "--header=Accept: application/json",
        # runserver's connections fail now and then under CI's load (a dropped keep-alive, once a
        # status line "<!DOCTYPE HTML>"): such a request is sent again; every answer is checked.
        "--request-retries=2",
        f"--header=X-CSRFToken: {CSRF_TOKEN}",
        f"--header=Cookie: {cookie}",
        "--no-color",
        f"--report-dir={folder / name}",
        "--report=junit",
    ]
    # In tmp_path: the CLI keeps a .schemathesis folder in its working directory.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=folder)


def test_schemathesis_finds_nothing(site: str, tmp_path: Path) -> None:
    if not Path(sys.executable).with_name("st").exists():
        pytest.skip("needs the st command of schemathesis next to this Python")
    result = _schemathesis(site, tmp_path, "anonymous", f"csrftoken={CSRF_TOKEN}")
    assert result.returncode == 0, f"Schemathesis found problems:\n{result.stdout}\n{result.stderr}"
    assert "Tested: 26" in result.stdout, result.stdout  # 14 for browsers, 12 for apps


@pytest.fixture(scope="module")
def logged_in_client(site: str) -> requests.Session:
    """A JSON API client logged in by a (sandbox) call; it keeps the cookies the site sets."""
    client = requests.Session()
    client.headers["Accept"] = "application/json"
    # As the CLI run: a request runserver's connection dropped before answering is sent again.
    retry = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=None, raise_on_status=False)
    client.mount("http://", HTTPAdapter(max_retries=retry))
    client.get(site + "/login/").raise_for_status()  # sets the CSRF cookie

    def post(path: str, **data: str) -> requests.Response:
        return client.post(site + path, data=data, headers={"X-CSRFToken": client.cookies["csrftoken"]})

    assert post("/callauth/start/", phone="+7 900 555-00-01").status_code == 201
    assert post("/callauth/sandbox/call/").json()["status"] == "confirmed"
    assert post("/callauth/complete/").status_code == 200
    return client


class AppSession(requests.Session):
    """An app client: no cookies, the latest session token the site gave in ``X-Session-Token``."""

    def __init__(self) -> None:
        super().__init__()
        self.token = ""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-Session-Token": self.token}
        self.cookies.clear()  # an app keeps none (and the site sets none: the CLI run checks the headers)
        response = super().request(method, url, *args, **kwargs)
        self.token = response.headers.get("X-Session-Token", self.token)
        return response


@pytest.fixture(scope="module")
def logged_in_app(site: str) -> AppSession:
    """An app client logged in by a (sandbox) call: its session token, no cookie, no CSRF token."""
    app = AppSession()
    retry = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=None, raise_on_status=False)
    app.mount("http://", HTTPAdapter(max_retries=retry))
    assert app.post(site + "/callauth/app/v1/start/", json={"phone": "+7 900 555-00-03"}).status_code == 201
    assert app.post(site + "/callauth/app/v1/sandbox/call/").json()["status"] == "confirmed"
    assert app.post(site + "/callauth/app/v1/complete/").status_code == 200
    assert not app.cookies
    return app


@pytest.mark.parametrize("client_kind", ["browser", "app"])
def test_schemathesis_finds_nothing_logged_in(
    site: str, client_kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Schemathesis keeps a .schemathesis folder in the working directory
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

    app = client_kind == "app"
    logged_in_client: requests.Session = request.getfixturevalue("logged_in_app" if app else "logged_in_client")
    prefix = "/callauth/app/v1" if app else "/callauth"
    schema = schemathesis.openapi.from_url(site + "/openapi.json").include(path_regex=APP_PHONES if app else PHONES)
    # The session and CSRF cookies and header are the client's, never generated.
    schema.config.generation.update(with_security_parameters=False)

    def call(case: Any) -> Any:
        # Django gives a new CSRF token at login: the header follows the cookie. An app sends its
        # session token instead (AppSession adds it).
        headers = {} if app else {"X-CSRFToken": logged_in_client.cookies["csrftoken"]}
        # The checks of the CLI run but two: "valid data accepted" cannot hold (a flow to
        # poll that is not there is no_flow 400), and "auth ignored" strips the cookie from
        # the case, which this client sends anyway (the CLI run checks it anonymously).
        excluded = [positive_data_acceptance, ignored_auth]
        return case.call_and_validate(session=logged_in_client, headers=headers, excluded_checks=excluded)

    # First a phone to add, so the phone-adding flow's operations are fuzzed with a flow to act on.
    add = schema[f"{prefix}/phones/add/"]["POST"]
    assert call(add.Case(body={"phone": "+7 900 555-00-02"}, media_type="application/json")).status_code == 201
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == (7 if app else 8)  # apps have no challenge page
    for operation in operations:
        # A GET here takes no input: nothing to make invalid.
        modes = [GenerationMode.POSITIVE] if operation.method.upper() == "GET" else list(GenerationMode)
        for mode in modes:
            # derandomize: the same examples every run, so CI fails on a change, never on luck.
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=True,
            )
            def fuzz(case: Any) -> None:
                call(case)

            fuzz()
