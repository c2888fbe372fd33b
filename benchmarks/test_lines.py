"""How big the tests are next to the package they test: the two ratios of issue 14.

    .venv/bin/python benchmarks/test_lines.py

Lines are counted as ``wc -l`` counts them, blank lines included.

- overall: every ``tests/**/*.py`` over every ``django_callauth/**/*.py`` but its migrations.
- per module: the test files that test exactly one package module (``MODULE_OF`` below, kept
  explicit so the number can be reproduced), their lines over the lines of those modules
  (each module counted once, even when two test files test it).

The view tests, the security, browser, end-to-end and stack suites and any test file that
tests several modules (flows, commands, linking, ...) count in the overall ratio only.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_callauth"
TESTS = ROOT / "tests"

# tests/test_<key>.py -> the one module of django_callauth/ it tests
MODULE_OF = {
    "test_adapter.py": "adapter.py",
    "test_admin.py": "admin.py",
    "test_backends.py": "backends.py",
    "test_checks.py": "checks.py",
    "test_clientip.py": "guards/clientip.py",
    "test_errors.py": "errors.py",
    "test_flowcache.py": "flows/cache.py",
    "test_models.py": "models.py",
    "test_transitions.py": "models.py",
    "test_phones.py": "phones.py",
    "test_prometheus.py": "contrib/prometheus/metrics.py",
    "test_providers.py": "providers/__init__.py",
    "test_providers_base.py": "providers/base.py",
    "test_providers_http.py": "providers/http.py",
    "test_providers_review.py": "providers/review.py",
    "test_providers_sandbox.py": "providers/sandbox.py",
    "test_providers_session.py": "providers/session.py",
    "test_providers_sms_ru.py": "providers/sms_ru.py",
    "test_providers_smsc.py": "providers/smsc.py",
    "test_providers_telefon_ip.py": "providers/telefon_ip.py",
    "test_qr.py": "web/qr.py",
    "test_reauthentication.py": "guards/reauthentication.py",
    "test_redaction.py": "guards/redaction.py",
    "test_reporting.py": "reporting.py",
    "test_starting.py": "flows/start.py",
    "test_stats.py": "stats.py",
    "test_templatetags.py": "templatetags/callauth.py",
    "test_throttling.py": "guards/limits.py",
    "test_tokens.py": "guards/webhook_secrets.py",
}


def lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 16), b""))


def main() -> None:
    package = sum(lines(path) for path in PACKAGE.rglob("*.py") if "migrations" not in path.relative_to(PACKAGE).parts)
    tests = sum(lines(path) for path in TESTS.rglob("*.py"))
    print(f"overall: tests {tests} / package {package} = {tests / package:.2f}x")
    print()
    print(f"{'test file':32} {'lines':>5}  {'module':32} {'lines':>5} {'ratio':>6}")
    test_total = 0
    modules: dict[str, int] = {}
    for test_name, module in sorted(MODULE_OF.items()):
        test_lines = lines(TESTS / test_name)
        module_lines = lines(PACKAGE / module)
        test_total += test_lines
        modules[module] = module_lines
        print(f"{test_name:32} {test_lines:5}  {module:32} {module_lines:5} {test_lines / module_lines:5.2f}x")
    module_total = sum(modules.values())
    print()
    print(f"per module: tests {test_total} / modules {module_total} = {test_total / module_total:.2f}x")


if __name__ == "__main__":
    main()
