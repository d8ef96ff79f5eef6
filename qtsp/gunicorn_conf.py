"""gunicorn settings for the QTSP application: ``gunicorn -c python:qtsp.gunicorn_conf ...``.

Each worker, once it has loaded the application, opens its runtime (database pool, key backend)
and prepares itself for issuing (:func:`qtsp.wiring.prepare_issuing_process`), so that no request
pays for building pkilint's validators and the garbage collector leaves the start-up heap alone.
Command-line options (``--workers``, ``--bind``, ...) still apply.
"""

from __future__ import annotations

from typing import Any

from qtsp.wiring import prepare_issuing_process


def post_worker_init(worker: Any) -> None:
    """gunicorn's hook, in the worker after the fork and after the application was loaded."""
    runtimes = worker.wsgi.extensions["qtsp_runtime"]
    prepare_issuing_process(runtimes.get())
