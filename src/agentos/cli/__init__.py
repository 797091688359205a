"""The ``agentos`` command line: ``main.py`` builds the app from one module per group."""
