"""The closed-loop demo (``make demo``, ``python -m demo``): not part of the provider's wheel.

The package holds the demo driver (``run``, ``closed_loop``, ``world``, ``data``, ``seed``) and the
two process launchers it runs: the Airflow cluster (``cluster``) and the model server
(``server_process``). The scheduler and end-to-end tests start the same processes, so they import
the launchers from here (through ``tests/support/``); the demo never imports the tests. One home
and one direction: ``tests -> demo -> airflow_mlops``. The repository root is on ``sys.path`` both
for ``python -m demo`` (run from the root) and for pytest (rootdir ``conftest.py``).
"""
