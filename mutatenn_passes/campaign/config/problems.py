"""Every problem of a campaign, collected and raised at once, each where it is: the line of
its key in a TOML text (`TextLines`), its key path in a dict (`KeyPaths`), or the override
(flag or keyword) that set it (`Overridden`).
"""

from __future__ import annotations

import difflib

from ...errors import ConfigError
from .tomllines import KeyLines


class TextLines:
    """Where a problem is in a TOML text: the line of its key, or of one element of an array
    (``value``)."""

    what = "campaign file"

    def __init__(self, source: str, text: str):
        self.source = source
        self.lines = KeyLines(text)

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        line = self.lines.line_of(path) if value is None \
            else self.lines.value_line(path, f'"{value}"')
        return line, f"{self.source}:{line}"


class KeyPaths:
    """Where a problem is in a dict: its key path (``models[0].path``), for a campaign that
    has no text to point into."""

    what = "campaign"

    def __init__(self, source: str):
        self.source = source

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return 0, f"{self.source}: {dotted.lstrip('.') or 'top level'}"


class Overridden:
    """Problems of ``[campaign]`` keys given as overrides are located at the override (a
    command-line flag or a keyword), the others by ``inner``."""

    def __init__(self, inner, labels: dict[str, str]):
        self.inner, self.labels = inner, labels
        self.source, self.what = inner.source, inner.what

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        if len(path) >= 2 and path[0] == "campaign" and path[1] in self.labels:
            return 0, self.labels[path[1]]
        return self.inner.where(path, value)


#: Sort key offset of problems in other files than the campaign's: after all of its lines.
_OTHER_FILE = 10 ** 9


class Problems:
    """Every problem found in a campaign, each with where it is (see `TextLines`, `KeyPaths`)."""

    def __init__(self, locator):
        self.locator = locator
        self.items: list[tuple[int, str, str]] = []

    def add(self, path, message: str, value=None) -> None:
        """A problem at key ``path`` (at the element ``value`` of an array, when given)."""
        self.items.append((*self.locator.where(tuple(path or ()), value), message))

    def add_in_file(self, path, line: int, message: str) -> None:
        """A problem at ``line`` of another file (one the campaign names, such as the image
        labels file), listed after the campaign's own problems, in line order."""
        self.items.append((_OTHER_FILE + line, f"{path}:{line}", message))

    def unknown_keys(self, table: dict, known, path: tuple, where: str) -> None:
        for key in table:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else \
                    f" (known: {', '.join(sorted(known))})"
                self.add(path + (key,), f"unknown key {key!r} in {where}{hint}")

    def read(self, table: dict, keys, path: tuple, where: str, *, known=None,
             defaults: bool = True) -> dict:
        """The values of ``keys`` in ``table``: checked (a rejected value is reported and
        replaced by its default), and, with ``defaults``, defaults for the missing ones.
        Keys outside ``known`` (default: ``keys``) are reported as unknown."""
        self.unknown_keys(table, known or {k.name for k in keys}, path, where)
        out = {}
        for key in keys:
            if key.name not in table:
                if defaults:
                    out[key.name] = key.default
                continue
            value = table[key.name]
            if not key.ok(value):
                self.add(path + (key.name,), f"{key.name} must be {key.must}, not {value!r}")
                value = key.default
            out[key.name] = value
        return out

    def raise_if_any(self) -> None:
        """One `ConfigError`: a single problem on one line, several one per line under a
        heading, in the order of the text (overrides first)."""
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])
        if len(self.items) == 1:
            _, where, msg = self.items[0]
            raise ConfigError(f"{where}: {msg}")
        head = f"{self.locator.source}: {len(self.items)} problem(s) in the " \
               f"{self.locator.what}"
        body = "\n".join(f"  {where}: {msg}" for _, where, msg in self.items)
        raise ConfigError(f"{head}\n{body}")
