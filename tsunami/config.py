"""Shared helpers for reading input files (TOML, CSV, text) with precise error messages.

Every number read from a file goes through :meth:`Table.number` (or :meth:`Range.check`):
it must be finite and, where a :class:`Range` is given, plausible. The ranges themselves
live beside the keys they guard (``SCENARIO_RANGES`` in :mod:`tsunami.scenario`,
``REGION_RANGES`` in :mod:`tsunami.region`, ``FAULT_RANGES`` in
:mod:`tsunami.source.table`) and are listed in README, "Plausible ranges".
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsunami.errors import InputError


@dataclass(frozen=True)
class Range:
    """A plausible range for a number read from a file: ``low <= value <= high`` (or
    ``low < value`` with ``open_low``), in ``unit``; ``why`` says where the bounds come
    from (shown in README)."""

    low: float
    high: float
    unit: str = ""
    open_low: bool = False
    why: str = ""

    def describe(self) -> str:
        """The range as README and messages show it: ``0 ... 90 deg``, ``> 0 ... 72 s``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{'> ' if self.open_low else ''}{_number(self.low)} ... {_number(self.high)}{unit}"

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        if value < self.low or value > self.high or (self.open_low and value == self.low):
            unit = f" {self.unit}" if self.unit else ""
            return f"{_number(value)}{unit} is outside the plausible range {self.describe()}"
        return None


def _number(value: float) -> str:
    """1,000,000 rather than 1e+06 where that reads better."""
    if value == int(value) and 1e4 <= abs(value) < 1e7:
        return f"{value:,.0f}"
    return f"{value:g}"


def read_text(path: str | Path, what: str, field: str | None = None,
              config: str | Path | None = None) -> str:
    """The text of an input file: UTF-8, with or without a BOM (Excel's "CSV UTF-8").

    Binary files and other encodings (Shift-JIS, say) raise :class:`InputError` naming
    the file (or ``config``/``field``, the key that pointed to it) and what to do.
    """
    path = Path(path)
    source, key = (config, field) if config is not None else (path, field)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(source, key, f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(source, key, f"{path} is a folder, not a {what} file") from None
    except PermissionError as exc:
        raise InputError(source, key, f"cannot read {path}: {exc.strerror}") from None
    if b"\0" in data[:8192]:
        raise InputError(source, key, f"{path.name} is a binary file, not a {what} file "
                         "(text)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(source, key, f"{path.name} is not UTF-8 text (byte "
                         f"{exc.start}: {data[exc.start:exc.start + 2]!r}); Shift-JIS or "
                         "another encoding? Save it as UTF-8") from None


def load_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Parse a TOML file (UTF-8, BOM allowed), turning errors into :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"{what} file not found")
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"malformed TOML: {exc}") from None


class Table:
    """A TOML table being read: tracks its file and dotted name for errors."""

    def __init__(self, data: Any, source: Path, name: str) -> None:
        if not isinstance(data, dict):
            raise InputError(source, name, f"expected a table, got {type(data).__name__}")
        self.data = data
        self.source = source
        self.name = name

    def field(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def error(self, key: str | None, message: str) -> InputError:
        return InputError(self.source, self.field(key) if key else self.name, message)

    def check_keys(self, allowed: set[str], required: set[str] = frozenset()) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown key; expected one of {sorted(allowed)}")
        for key in required:
            if key not in self.data:
                raise self.error(key, "missing required key")

    def has(self, key: str) -> bool:
        return key in self.data

    def str(self, key: str, default: str | None = None, choices: set[str] | None = None
            ) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"expected text, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"{value!r} is not one of {sorted(choices)}")
        return value

    def number(self, key: str, default: float | None = None, *, within: Range | None = None,
               positive: bool = False, minimum: float | None = None,
               maximum: float | None = None) -> float | None:
        """A finite number (NaN and inf are refused), within ``within`` if given."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if within is not None and (problem := within.problem(value)):
            raise self.error(key, problem)
        if positive and value <= 0:
            raise self.error(key, f"must be positive, got {value:g}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        """An integer (a float such as 3.0, NaN or inf is refused) within the bounds."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def numbers(self, key: str, count: int | None = None) -> list[float] | None:
        """A list of finite numbers (a single number is a list of one)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise self.error(key, f"expected a list of numbers, got {value!r}")
        if count is not None and len(value) != count:
            raise self.error(key, f"expected {count} numbers, got {len(value)}")
        if not all(math.isfinite(v) for v in value):
            raise self.error(key, f"every number must be finite, got {value!r}")
        return [float(v) for v in value]

    def path(self, key: str, required: bool = True) -> Path | None:
        """A file path relative to the TOML file; must exist."""
        value = self.str(key)
        if value is None:
            if required:
                raise self.error(key, "missing required key")
            return None
        path = Path(value)
        if not path.is_absolute():
            path = self.source.parent / path
        if not path.exists():
            raise self.error(key, f"file not found: {path}")
        return path

    def table(self, key: str, required: bool = False) -> Table | None:
        if key not in self.data:
            if required:
                raise self.error(key, "missing required table")
            return None
        return Table(self.data[key], self.source, self.field(key))

    def tables(self, key: str) -> list[Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of tables ([[{key}]])")
        return [Table(v, self.source, f"{self.field(key)}[{i}]") for i, v in enumerate(value)]
