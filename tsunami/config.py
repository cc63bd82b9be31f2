"""Shared helpers for reading TOML input files with precise error messages."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tsunami.errors import InputError


def load_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Parse a TOML file, turning syntax errors into :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"{what} file not found")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc}") from None


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

    def number(self, key: str, default: float | None = None, *, positive: bool = False,
               minimum: float | None = None, maximum: float | None = None) -> float | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        value = float(value)
        if value != value:
            raise self.error(key, "is NaN")
        if positive and value <= 0:
            raise self.error(key, f"must be positive, got {value:g}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None
                ) -> int | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def numbers(self, key: str, count: int | None = None) -> list[float] | None:
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
