"""Optional integrations, each an app of its own, added to ``INSTALLED_APPS`` by the projects that want it."""
