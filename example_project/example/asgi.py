"""The example site as an ASGI application: ``uvicorn example.asgi:application`` from example_project/.

ASGI is what the challenge page's push channel (``/callauth/events/``) needs: one open
stream per waiting browser costs a coroutine and an idle thread, not a busy worker. The rest of the site
is the same synchronous Django either way (docs/howto/production.rst says when to choose which).
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
application = get_asgi_application()
if settings.DEBUG:
    # As runserver does: the pages' CSS and challenge.js, on a laptop. In production the
    # proxy or WhiteNoise serves them (docs/howto/production.rst, static files).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
