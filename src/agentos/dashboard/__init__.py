"""The dashboard: pages served by ``agentos serve`` itself at ``/``, drawn in the
browser from the REST API (``pages.py`` lists them, ``routes.py`` serves them,
``static/app/`` draws them); front-end libraries come from npm at setup, never
from a CDN."""
