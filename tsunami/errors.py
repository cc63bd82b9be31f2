"""Errors raised to users, and the exit codes of the command line.

Every failure an operator can cause or meet falls in one of three classes, each with its
own exit status of ``tsunami`` (README, "Operating it"):

- :class:`InputError` (exit 2): a file or argument is wrong; the message names the file
  and the field. :class:`BlowUpError` counts as input too: an unstable run comes from the
  bathymetry or the numerics the files chose.
- :class:`EnvironmentFault` (exit 3): the machine is in the way: a full disk, a folder
  that may not be written, an I/O error. The input is fine; retry when it is fixed.
- anything else (exit 4): a bug; the traceback goes to a file named in the message.
"""

from __future__ import annotations

import errno
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Exit statuses of the ``tsunami`` command, in one place (documented in README).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # `tsunami validate`: a validation case missed its bound
EXIT_INPUT = 2  # bad input file or argument (argparse uses 2 for bad arguments too)
EXIT_ENVIRONMENT = 3  # disk full, permission denied, I/O error: fix the machine, retry
EXIT_INTERNAL = 4  # an unexpected error (a bug): traceback written to a file
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGINT (128 + 2, the shell convention)

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_CHECK_FAILED: "tsunami validate: a validation case missed its bound",
    EXIT_INPUT: "bad input: a file or argument is wrong (the message names file and field)",
    EXIT_ENVIRONMENT: "environment: disk full, permission denied, I/O error (retry when fixed)",
    EXIT_INTERNAL: "internal error (a bug): the message names the traceback file",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class InputError(ValueError):
    """Bad input: names the file and the field (key, column, band) at fault."""

    def __init__(self, source: str | Path | None, field: str | None, message: str) -> None:
        self.source = str(source) if source is not None else None
        self.field = field
        self.message = message
        where = ", ".join(p for p in (self.source, f"field '{field}'" if field else None) if p)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):
        # Rebuilt from its own arguments (and attributes, such as the findings a task
        # kept): pickle's default passes ``args``, the one formatted message, and fails
        # on the way back, e.g. from a process-pool worker.
        return type(self), (self.source, self.field, self.message), self.__dict__


class InputWarning(UserWarning):
    """Input that is legal but probably not what was meant (the CLI prints it on stderr)."""


@dataclass(frozen=True)
class Finding:
    """What an :class:`InputWarning` says, kept rather than shown: the file and the field
    at fault and what is odd. A check run in a Dask task keeps its findings for the client
    to show (warnings raised in a worker reach only the worker's log; ``catch_warnings``
    cannot collect them there, as threads of a worker share its state)."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}, field '{self.field}': {self.message}"


def input_warning(finding: Finding, findings: list[Finding] | None, stacklevel: int = 2
                  ) -> None:
    """Warn about ``finding`` now, as an :class:`InputWarning` (``stacklevel`` as for
    :func:`warnings.warn` from the caller), or, given a ``findings`` list, append it there
    for the caller to report."""
    if findings is None:
        warnings.warn(str(finding), InputWarning, stacklevel=stacklevel + 1)
    else:
        findings.append(finding)


@contextmanager
def findings_kept(findings: list[Finding]) -> Iterator[None]:
    """Give an exception raised in the block the ``findings`` made so far, for
    :func:`findings_of`: a warning found before a failure often explains it (land and sea
    that look swapped, then a source that reaches no water), and a Dask task that raises
    hands back nothing else. An attribute, as distributed sends an exception to the client
    with its ``__dict__`` (also from worker processes)."""
    try:
        yield
    except Exception as exc:
        exc.input_findings = list(dict.fromkeys([*findings_of(exc), *findings]))
        raise


def findings_of(exc: BaseException) -> list[Finding]:
    """The findings :func:`findings_kept` gave ``exc`` (none for another exception)."""
    return list(getattr(exc, "input_findings", []))


class BlowUpError(RuntimeError):
    """The solution became non-finite or ran away: stops the run before any output."""

    def __init__(self, grid: str, time: float, location: tuple[float, float], detail: str):
        self.grid, self.time, self.location, self.detail = grid, time, location, detail
        super().__init__(
            f"numerical blow-up on grid '{grid}' at t = {time:.2f} s near "
            f"x = {location[0]:.6f}, y = {location[1]:.6f}: {detail}. Reduce the CFL safety "
            "factor, check the bathymetry for spikes, or raise dry_depth.")

    def __reduce__(self):  # (as InputError's)
        return type(self), (self.grid, self.time, self.location, self.detail), self.__dict__


class EnvironmentFault(OSError):
    """The machine, not the input, stopped the work: ``path`` could not be ``action``-ed.

    ``hint`` says what to do. Built from an :class:`OSError` by :func:`environment_fault`.
    """

    def __init__(self, path: str | Path | None, action: str, detail: str, hint: str,
                 code: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.action, self.detail, self.hint, self.code = action, detail, hint, code
        target = f" {self.path}" if self.path else ""
        super().__init__(code, f"cannot {action}{target}: {detail}; {hint}")

    def __reduce__(self):  # (as InputError's)
        return (type(self), (self.path, self.action, self.detail, self.hint, self.code),
                self.__dict__)

    def __str__(self) -> str:
        return self.strerror


# What to do about an OSError, by errno.
_HINTS = {
    errno.ENOSPC: "the disk is full: free space (or point --out/--outbox elsewhere) and "
                  "run again",
    errno.EDQUOT: "the disk quota is exhausted: free space and run again",
    errno.EACCES: "permission denied: make the folder writable for this user or choose "
                  "another",
    errno.EPERM: "operation not permitted: check the folder's owner and permissions",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.ENOTEMPTY: "a folder that should be empty is not: another process may be "
                     "writing there; remove it or choose another folder",
    errno.EEXIST: "something is already there: remove it or choose another name",
    errno.ENOTDIR: "a file stands where a folder is needed: remove it or choose another path",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.EIO: "an input/output error: check the disk or network share",
    errno.ENOMEM: "out of memory: close other work or use a smaller region",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or run fewer at once",
    errno.ENFILE: "too many open files on the system: run fewer at once",
    errno.ESTALE: "the network share went stale: remount it and run again",
}


def environment_fault(exc: BaseException, action: str = "write") -> EnvironmentFault:
    """An :class:`EnvironmentFault` for an OSError (or a NetCDF/HDF write error)."""
    if isinstance(exc, EnvironmentFault):
        return exc
    if isinstance(exc, OSError):
        code = exc.errno
        hint = _HINTS.get(code, "check the disk, the path and its permissions")
        detail = exc.strerror or str(exc)
        path = exc.filename
        if exc.filename2:  # a rename or link
            path, action = f"{exc.filename} to {exc.filename2}", "rename"
        return EnvironmentFault(path, action, detail, hint, code)
    # netCDF4 reports a full disk or an unwritable file as "NetCDF: HDF error".
    return EnvironmentFault(None, action, str(exc), "usually a full disk or a file that may "
                            "not be written: check free space and permissions of the output "
                            "folder")


def is_netcdf_error(exc: BaseException) -> bool:
    """True for the RuntimeErrors the netCDF library raises ("NetCDF: HDF error", ...)."""
    return isinstance(exc, RuntimeError) and str(exc).startswith(("NetCDF:", "HDF error"))
