"""The ``setting`` directive and role, as Django's documentation defines them.

``.. setting:: CALLAUTH_TTL`` marks where a setting is described and puts it in the index;
``:setting:`CALLAUTH_TTL``` links to it. Django's inventory has the same object type
(``std:setting``), so ``:setting:`LOGIN_URL``` links to Django's own settings reference.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_crossref_type(directivename="setting", rolename="setting", indextemplate="pair: %s; setting")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
