"""Helpers the tests share: plain functions, constants and classes, never fixtures.

Fixtures live in ``conftest.py`` files (and may call these helpers); test modules import helpers
from here, never from a ``conftest.py`` or from another test module. The process launchers the
scheduler and end-to-end tests need (the Airflow cluster, the model server) live in the top-level
``demo`` package, because ``make demo`` runs them too: tests import them from ``demo`` (directly,
or through :mod:`tests.support.server_process`), and ``demo`` never imports ``tests``.
"""
