"""Process-wide PKCS#11 state: one lock for every call, and the modules loaded in this process.

Why one lock for the whole process (FIELD-NOTES #2): python-pkcs11 calls ``C_Initialize(NULL)``,
so the module is not asked to use OS locking and SoftHSM2 turns its own mutexes off, while
python-pkcs11 releases the GIL around the C calls.  Two threads signing at the same time then
crash the process, even on separate sessions.  Every PKCS#11 call in this package therefore runs
while holding :func:`lock`.  Parallel signing needs processes, one session pool each.

Why a registry of modules: ``C_Initialize``/``C_Finalize`` act on the whole process, not on one
caller.  When one backend re-initialises a module to recover from a lost token, every other
backend using the same module must notice that its sessions and object handles are gone (and
must never use them again: handles are small integers that the module hands out again after a
re-initialisation).  Each :class:`Module` therefore counts its re-initialisations in
:attr:`Module.generation`; a backend compares the generation of its sessions with it before use.

Fork safety: a child process must not use the parent's sessions, and the PKCS#11 specification
requires it to call ``C_Initialize`` itself.  :meth:`Module.lib` notices a changed process id and
re-initialises the module in the child.  The lock is held across ``fork()`` (so that no PKCS#11
call is half-way in the parent when the child is created) and replaced by a fresh lock in the child.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import pkcs11
from pkcs11.exceptions import PKCS11Error

__all__ = ["Module", "lock", "module"]

_lock = threading.RLock()
_modules: dict[str, Module] = {}


def lock() -> threading.RLock:
    """Return the process-wide lock that serialises every PKCS#11 call (re-entrant)."""
    return _lock


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    # The child has a single thread; the copy of the lock is held by the forking thread's
    # before-fork hook.  A fresh lock is simpler and certainly free.
    global _lock  # noqa: PLW0603 - the lock is process-wide state by design.
    _lock = threading.RLock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class Module:
    """A PKCS#11 module (shared library) as loaded in this process.

    All methods must be called while holding :func:`lock`.

    :ivar path: the path the module was loaded from.
    :ivar generation: incremented whenever the module is finalised (recovery, or a fork); sessions
        and object handles obtained in an earlier generation are invalid.  It is also the number of
        re-initialisations (see :attr:`reinitialisations`).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.generation = 0
        self._lib: Any = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"Module(path={self.path!r}, generation={self.generation})"

    @property
    def reinitialisations(self) -> int:
        """How many times this process finalised the module (for tests and status)."""
        return self.generation

    def current_generation(self) -> int:
        """Return the generation, first re-initialising the module if this is a forked child."""
        self._check_fork()
        return self.generation

    def lib(self) -> Any:
        """Return the python-pkcs11 ``lib`` object, loading and initialising the module if needed.

        :raises pkcs11.exceptions.PKCS11Error: if the module cannot be loaded or initialised.
        """
        self._check_fork()
        if self._lib is None:
            # pkcs11.lib() loads the shared library once per path and calls C_Initialize.
            self._lib = pkcs11.lib(self.path)
        elif not self._lib.initialized:
            self._lib.initialize()
        return self._lib

    def reinitialise(self, seen_generation: int) -> bool:
        """Finalise the module so that the next :meth:`lib` call initialises it afresh.

        Nothing happens if another caller already did so since ``seen_generation``: several backends
        (or threads) noticing the same lost token re-initialise the module only once.

        :param seen_generation: the generation of the sessions that failed.
        :returns: whether the module was finalised by this call.
        """
        self._check_fork()
        if seen_generation != self.generation:
            return False
        self._finalize()
        return True

    def _finalize(self) -> None:
        if self._lib is not None:
            # A module that is already broken may refuse C_Finalize; python-pkcs11 marks the
            # library uninitialised anyway and the next C_Initialize decides.
            with contextlib.suppress(PKCS11Error):
                self._lib.finalize()
        self.generation += 1

    def _check_fork(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            # The PKCS#11 base specification ("Applications and processes"): a child process
            # must call C_Initialize and must not use the parent's sessions.  Finalising first
            # clears the state copied from the parent (without it, C_Initialize answers
            # CKR_CRYPTOKI_ALREADY_INITIALIZED).
            self._pid = pid
            self._finalize()


def module(path: str) -> Module:
    """Return the process-wide :class:`Module` for ``path`` (one per real path of the shared library).

    The module is not loaded until :meth:`Module.lib` is called.
    """
    key = os.path.realpath(path)
    with _lock:
        found = _modules.get(key)
        if found is None:
            found = Module(path)
            _modules[key] = found
        return found
