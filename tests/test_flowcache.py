"""A flow's state in the shared cache (flowcache.py): what a poll reads when the copy cannot be used.

How much a poll costs with the cache working, and a cache that fails, are in test_hot_path.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from django_callauth import flowcache
from django_callauth.models import CallAuthFlow, FlowStatus
from tests.helpers import JSON, PHONE, FlowFactory, browser_with, url

pytestmark = pytest.mark.django_db


def test_a_copy_stored_by_another_version_of_the_model_is_a_miss_and_the_row_is_read(
    flow_factory: FlowFactory, django_assert_num_queries: Any
) -> None:
    flow = flow_factory()
    browser = browser_with(flow)
    # During a deploy, a worker of another version cached the flow with a field this one lacks.
    row = CallAuthFlow.objects.filter(pk=flow.pk).values().get()
    caches["default"].set(flowcache._key(flow.pk), {**row, "a_newer_field": 1})
    CallAuthFlow.objects.filter(pk=flow.pk).update(status=FlowStatus.CONFIRMED, caller=PHONE)  # the row moved on

    assert flowcache.load(str(flow.pk)) is None
    with django_assert_num_queries(2):  # the session, then the row
        assert browser.get(url("status"), **JSON).json()["status"] == "confirmed"
    cached = flowcache.load(str(flow.pk))  # the row replaced the unusable copy
    assert cached is not None and cached.status == FlowStatus.CONFIRMED
