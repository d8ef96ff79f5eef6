"""nginx as a caching edge in front of the OCSP responder (``deploy/nginx/qtsp-ocsp.conf``).

:func:`render_nginx_config` fills the template's ``{{placeholders}}``; :func:`nginx_edge` runs an
nginx of its own (own prefix, pid file, error log and cache directory; no system configuration)
with the rendered file, for the tests and ``qtsp bench ocsp``.  The template explains why a
revocation is visible through the edge within 2 s.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TEMPLATE", "nginx_binary", "nginx_edge", "render_nginx_config"]

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "qtsp-ocsp.conf"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_SAFE = re.compile(r"[A-Za-z0-9_.:/\[\]@-]+")


def _checked(name: str, value: str) -> str:
    """Refuse values that could end an nginx directive or start a new one."""
    if not _SAFE.fullmatch(value):
        raise ValueError(f"{name}: {value!r} is not a plain address, host:port or path")
    return value


def render_nginx_config(
    listen: str,
    upstream: str,
    cache_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    worker_processes: int = 2,
    user: str | None = None,
    keys_zone_mb: int = 10,
    max_size_mb: int = 256,
) -> str:
    """The nginx configuration of the OCSP edge.

    :param listen: what the edge listens on (``127.0.0.1:8080``, ``80``, ``[::]:80``).
    :param upstream: the origin (``127.0.0.1:8000``: gunicorn serving ``qtsp.app:create_app()``).
    :param cache_dir: the proxy cache directory (created by nginx).
    :param run_dir: pid file, error log, temporary files and the internal unix socket (default:
        the parent of ``cache_dir``).
    :param user: the ``user`` directive (only meaningful when nginx starts as root).
    """
    cache = Path(cache_dir)
    run = Path(run_dir) if run_dir is not None else cache.parent
    if worker_processes < 1 or keys_zone_mb < 1 or max_size_mb < 1:
        raise ValueError("worker_processes, keys_zone_mb and max_size_mb must be positive")
    values = {
        "listen": _checked("listen", listen),
        "upstream": _checked("upstream", upstream),
        "cache_dir": _checked("cache_dir", str(cache)),
        "run_dir": _checked("run_dir", str(run)),
        "worker_processes": str(worker_processes),
        "user_line": f"user {_checked('user', user)};" if user else "# user: the default of the nginx build",
        "keys_zone_mb": str(keys_zone_mb),
        "max_size_mb": str(max_size_mb),
    }
    if len(str(run / "stamp.sock")) > 100:
        raise ValueError(f"run_dir {run} is too long for a unix socket path")
    text = TEMPLATE.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - values.keys())
    if missing:
        raise ValueError(f"template placeholders without a value: {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def nginx_binary() -> str | None:
    """The nginx executable (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            error = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port}: {error[-2000:]}")
        time.sleep(0.05)


@contextlib.contextmanager
def nginx_edge(workdir: Path, port: int, upstream: str, *, worker_processes: int = 2) -> Iterator[Path]:
    """Run nginx with the rendered edge configuration on ``127.0.0.1:port`` until the block ends;
    yields the run directory (error.log, nginx.pid)."""
    exe = nginx_binary()
    if exe is None:
        raise RuntimeError("nginx is missing: install Debian's nginx (make system-deps does)")
    run = workdir / "nginx"
    run.mkdir(parents=True, exist_ok=True)
    # A master started as root hands requests to workers running as `user`: keep the caller's
    # own user so they can use the private run directory.
    user = "root" if os.geteuid() == 0 else None
    conf = run / "nginx.conf"
    conf.write_text(
        render_nginx_config(
            f"127.0.0.1:{port}", upstream, run / "cache", run_dir=run, worker_processes=worker_processes, user=user
        )
    )
    log = run / "error.log"
    check = subprocess.run(  # noqa: S603
        [exe, "-t", "-q", "-p", str(run), "-e", str(log), "-c", str(conf)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused the configuration: {check.stderr.strip()}")
    proc = subprocess.Popen(  # noqa: S603
        [exe, "-p", str(run), "-e", str(log), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc, log)
        yield run
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: workers finish their requests
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
