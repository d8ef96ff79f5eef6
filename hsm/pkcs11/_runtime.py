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

Why a shared login (FIELD-NOTES #3): login is per token and process, not per session or per caller,
and python-pkcs11 calls ``C_Logout`` when the session that logged in is closed.  A login owned by one
backend would log out every other backend of the process on that token when it is closed.  The
login therefore belongs to the :class:`Module`: one :class:`Login` per token label and generation,
a session kept only to hold the login, and a count of the backends using it.  The last one to
release it closes that session, which logs the token out.  A re-initialisation or a fork ends every
login (:meth:`Module._finalize` forgets them: their sessions no longer exist); the next backend to
connect logs in again.

Lock order: a caller that needs both the inter-process start-up file lock and :func:`lock` takes
the file lock first.  Nobody waits for the file lock (or sleeps) while holding :func:`lock`, so
a connected backend keeps signing while another one waits for a process that is logging in.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import pkcs11
from pkcs11.exceptions import PKCS11Error

__all__ = ["Login", "Module", "lock", "module"]

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


class Login:
    """This process's login to one token in one generation of a module, shared by its backends.

    :ivar label: the token label.
    :ivar generation: the module generation the login session belongs to.
    :ivar users: how many connections (one per backend) use the login now.
    """

    __slots__ = ("generation", "label", "session", "users")

    def __init__(self, label: str, generation: int, session: Any) -> None:
        self.label = label
        self.generation = generation
        self.users = 0
        self.session = session
        """The python-pkcs11 session that logged in; only :meth:`Module.release_login` closes it."""

    def __repr__(self) -> str:
        return f"Login(label={self.label!r}, generation={self.generation}, users={self.users})"


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
        self._logins: dict[str, Login] = {}

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

    def acquire_login(self, label: str, open_login_session: Callable[[], Any]) -> Login:
        """Take a reference to this process's login to token ``label``, logging in if nobody has.

        Call it while holding :func:`lock`, after finding the token in the current generation.

        :param open_login_session: opens the session that logs in (called only when the token has
            no login of this generation yet); its exceptions pass through and no reference is taken.
        :returns: the login; give it back with :meth:`release_login` exactly once.
        """
        self._check_fork()
        login = self._logins.get(label)
        if login is None or login.generation != self.generation:
            login = Login(label, self.generation, open_login_session())
            self._logins[label] = login
        login.users += 1
        return login

    def release_login(self, login: Login) -> None:
        """Give back a reference taken with :meth:`acquire_login`; the last one logs the token out.

        Call it while holding :func:`lock`.  A login of an earlier generation (or of the parent
        process) is simply forgotten: its session no longer exists, and closing its handle could
        close a session that reuses the number.
        """
        self._check_fork()
        if self._logins.get(login.label) is not login or login.generation != self.generation or login.users < 1:
            return
        login.users -= 1
        if login.users == 0:
            del self._logins[login.label]
            # python-pkcs11 calls C_Logout before C_CloseSession for the session that logged in.
            # A failure means the login or the session was lost already; the next user logs in.
            with contextlib.suppress(PKCS11Error):
                login.session.close()

    def logged_in(self, label: str) -> Login | None:
        """The live login to token ``label``, if any (for tests and status; call it holding :func:`lock`)."""
        self._check_fork()
        login = self._logins.get(label)
        return login if login is not None and login.generation == self.generation else None

    def _finalize(self) -> None:
        # Every session, the login sessions included, ends with C_Finalize (or never existed in a
        # forked child): forget the logins without closing anything.
        self._logins.clear()
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
