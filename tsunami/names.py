"""Names that become parts of file and folder names: events, towns, grids, stations.

A forecast's event id names a folder in the outbox and a town's name starts its product
files, so both must be safe on every file system an HQ or GIS team uses (Linux, Windows
shares, S3): no path separators, no "." or "..", no characters Windows refuses, no
control characters, no leading/trailing space or dot, at most 100 characters. Letters of
any script are allowed (Japanese town names are normal).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from tsunami.errors import InputError

MAX_NAME_LENGTH = 100
FORBIDDEN = set('/\\:*?"<>|')
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                    *(f"LPT{i}" for i in range(1, 10))}


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a file or folder, or None when it can."""
    if not isinstance(name, str):
        return f"expected text, got {name!r}"
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; at most {MAX_NAME_LENGTH}"
    bad = sorted({c for c in name if c in FORBIDDEN
                  or unicodedata.category(c).startswith("C")})
    if bad:
        return f"must not contain {''.join(repr(c) for c in bad)}"
    if name != name.strip() or name.endswith(".") or name.startswith("."):
        return "must not start with '.', end with '.', or have leading/trailing spaces"
    if name.split(".")[0].upper() in WINDOWS_RESERVED:
        return f"{name!r} is a reserved device name on Windows"
    return None


def check_name(name: object, source: str | Path | None, field: str | None) -> str:
    """Return ``name`` if it can name a file or folder; else raise :class:`InputError`
    naming ``source`` and ``field``."""
    problem = name_problem(name)
    if problem:
        raise InputError(source, field, f"{name!r} cannot name a file or folder: {problem}")
    return name
