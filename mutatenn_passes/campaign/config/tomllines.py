"""Line numbers for TOML keys.

`tomllib` parses a document into plain dicts and lists and keeps no positions, so error
messages could not say where a bad value is. `KeyLines` scans the text once and remembers, for
every key path (``("campaign", "workers")``, ``("models", 0, "path")``), the line where the key
is written, and for an array value the line of each element (``("operators", "ignore", 2)``)
and of the keys of its inline-table elements; `line_of` falls back to the nearest enclosing key
or table header, so every message gets a line. The scanner understands what campaign files use: comments, ``[table]`` and
``[[array.of.tables]]`` headers, dotted and quoted keys, multi-line arrays, inline tables and
multi-line strings. It never decides validity; `tomllib` does that first.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> list[str] | None:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]``; None when ``text`` is not a key."""
    parts, i, text = [], 0, text.strip()
    while i < len(text):
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            return None
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                return None
            parts.append(text[i + 1:end])
            i = end + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text):
            if text[i] != ".":
                return None
            i += 1
    return parts or None


class KeyLines:
    """Where each key of a TOML document is written (1-based lines)."""

    def __init__(self, text: str):
        self.lines: dict[tuple, int] = {}
        self._text_lines = text.splitlines()
        self._array: _Elements | None = None  # an array value still open at a line's end
        self._scan()

    def _record(self, path: tuple, line: int) -> None:
        self.lines.setdefault(path, line)

    def _scan(self) -> None:
        table: tuple = ()
        array_counts: dict[tuple, int] = {}
        depth = 0  # open brackets of an array value spanning lines
        in_multiline: str | None = None
        for number, raw in enumerate(self._text_lines, start=1):
            line = raw
            if in_multiline:
                end = line.find(in_multiline)
                if end < 0:
                    continue
                line = line[end + 3:]
                in_multiline = None
                depth, in_multiline = _track(line, depth)
                continue
            if depth == 0:
                stripped = line.strip()
                header = re.match(r"^\[\[(.+?)\]\]\s*(#.*)?$", stripped)
                if header:
                    key = _split_key(header.group(1))
                    if key:
                        base = tuple(key)
                        index = array_counts.get(base, 0)
                        array_counts[base] = index + 1
                        table = base + (index,)
                        self._record(base, number)
                        self._record(table, number)
                    continue
                header = re.match(r"^\[(.+?)\]\s*(#.*)?$", stripped)
                if header:
                    key = _split_key(header.group(1))
                    if key:
                        table = self._resolve(tuple(key), array_counts)
                        for n in range(1, len(table) + 1):
                            self._record(table[:n], number)
                    continue
                self._scan_pair(_blank_strings(line), number, table)
            elif self._array is not None and not self._array.scan(_blank_strings(line), number):
                self._array = None
            depth, in_multiline = _track(line, depth)

    @staticmethod
    def _resolve(key: tuple, array_counts: dict) -> tuple:
        """Map ``[a.b]`` under ``[[a]]`` to ``("a", last_index, "b")``."""
        out: tuple = ()
        for part in key:
            out += (part,)
            if out in array_counts:
                out += (array_counts[out] - 1,)
        return out

    def _scan_pair(self, code: str, number: int, prefix: tuple) -> None:
        """Record ``key = value`` at ``prefix``, and the keys of an inline-table value."""
        m = re.match(r"\s*(" + _KEY + r")\s*=\s*", code)
        if not m:
            return
        key = _split_key(m.group(1))
        if not key:
            return
        path = prefix + tuple(key)
        self._record(path, number)
        rest = code[m.end():]
        if rest.startswith("{"):
            self._record_inline_keys(path, rest[1:], number)
        elif rest.startswith("["):
            array = _Elements(self, path)
            self._array = array if array.scan(rest, number) else None

    def _record_inline_keys(self, path: tuple, inner: str, number: int) -> None:
        """The keys of an inline table whose text after ``{`` is ``inner`` (one level;
        deeper ones fall back to this line)."""
        for km in re.finditer(r"(?:^|,)\s*(" + _KEY + r")\s*=", _flatten(inner)):
            sub = _split_key(km.group(1))
            if sub:
                self._record(path + tuple(sub), number)

    def line_of(self, path) -> int:
        """The line of ``path`` or of its nearest recorded ancestor (1 when none)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1

    def value_line(self, path, needle: str) -> int:
        """The line, at or after ``path``'s key, where the text ``needle`` appears (for an
        element of a multi-line array); the key's line when not found."""
        start = self.line_of(path)
        for number in range(start, min(start + 200, len(self._text_lines)) + 1):
            text = self._text_lines[number - 1]
            if needle in text.split("#", 1)[0] or needle in text:
                return number
        return start


class _Elements:
    """The elements of one array value, scanned line by line as its text goes on: each
    element's line is recorded at ``path + (index,)``, and the keys of an inline-table element
    at ``path + (index, key)``."""

    def __init__(self, lines: KeyLines, path: tuple):
        self.lines, self.path = lines, path
        self.depth, self.index, self.expect = 0, 0, False

    def scan(self, code: str, number: int) -> bool:
        """Scan line ``number`` (strings blanked, comment dropped); whether the array is still
        open after it."""
        for i, c in enumerate(code):
            if self.depth == 1 and self.expect and c not in " \t,]":
                element = self.path + (self.index,)
                self.lines._record(element, number)
                if c == "{":
                    self.lines._record_inline_keys(element, code[i + 1:], number)
                self.index += 1
                self.expect = False
            if c in "[{":
                self.depth += 1
                self.expect = self.depth == 1
            elif c in "]}":
                self.depth -= 1
                if self.depth == 0:
                    return False
            elif c == "," and self.depth == 1:
                self.expect = True
        return True


_KEY = (r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
        r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*")


def _blank_strings(line: str) -> str:
    """Blank out the contents of string values and drop comments, so that ``=``, ``#`` or
    brackets inside strings are not read as syntax; quoted keys (followed by ``=`` or ``.``)
    are kept."""
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c in "\"'":
            end = line.find(c, i + 1)
            while c == '"' and end > 0 and line[end - 1] == "\\":
                end = line.find(c, end + 1)
            if end < 0:
                out.append(line[i:])
                break
            after = line[end + 1:].lstrip()
            if after.startswith("=") or after.startswith("."):
                out.append(line[i:end + 1])
            else:
                out.append(c + " " * (end - i - 1) + c)
            i = end + 1
            continue
        if c == "#":
            break
        out.append(c)
        i += 1
    return "".join(out)


def _flatten(text: str) -> str:
    """Remove nested brackets/braces contents so only the top-level keys remain visible."""
    out, depth = [], 0
    for c in text:
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth < 0:
                break
            continue
        if depth == 0:
            out.append(c)
    return "".join(out)


def _track(line: str, depth: int):
    """Bracket depth and an unterminated multi-line string after ``line``."""
    i = 0
    while i < len(line):
        c = line[i]
        if c == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            quote = line[i:i + 3]
            end = line.find(quote, i + 3)
            if end < 0:
                return depth, quote
            i = end + 3
            continue
        if c in "\"'":
            end = line.find(c, i + 1)
            while c == '"' and end > 0 and line[end - 1] == "\\":
                end = line.find(c, end + 1)
            i = (end + 1) if end >= 0 else len(line)
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        i += 1
    return depth, None
