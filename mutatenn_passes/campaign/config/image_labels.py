"""The ``[images] labels`` file, read line by line so that each problem names its line.

One ``image_name,class`` line per image (a tab, or the last space, also separates); the name
is an image's file name or stem (images are named by stem: ``cat.jpg`` and ``cat`` are the same
image), the class an index or one of the model's labels. ``#`` starts a comment line; blank
lines are skipped. `read_rows` splits the file; `problems` lists what a campaign refuses
before any work (a line that is not ``name,class``, an image the campaign does not have, an
image listed twice, a class out of the model's range, unknown to its labels, or naming two of
its classes); `reference` maps image names to class indices for the analysis.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError

_INDEX = re.compile(r"-?\d+")


@dataclass(frozen=True)
class LabelRow:
    """One ``name,class`` line: its 1-based line number, the image as written and its stem,
    and the class as written."""

    line: int
    written: str
    name: str
    cls: str


def read_rows(path: str | Path) -> list[LabelRow]:
    """The file's ``name,class`` lines (comments and blank lines left out)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the image labels file ({exc})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        sep = "," if "," in line else ("\t" if "\t" in line else None)
        name, _, cls = line.partition(sep) if sep else line.rpartition(" ")
        rows.append(LabelRow(number, name.strip(), Path(name.strip()).stem, cls.strip()))
    return rows


def class_index(cls: str, labels: list | None) -> int | None:
    """The class ``cls`` names: an index as it is, a label by its first line (None when it
    names none); the checks that refuse unclear classes are in `problems`."""
    if _INDEX.fullmatch(cls):
        return int(cls)
    if labels and cls in labels:
        return labels.index(cls)
    return None


def reference(rows: list[LabelRow], labels: list | None) -> dict[str, int]:
    """{image name: class index} of the rows whose class is known."""
    out = {}
    for row in rows:
        index = class_index(row.cls, labels)
        if index is not None:
            out[row.name] = index
    return out


def problems(rows: list[LabelRow], images: set[str], models: list) -> list[tuple[int, str]]:
    """(line, message) for every row a campaign refuses; ``images`` are the campaign's image
    names, ``models`` its imported models (each row's class must be clear for every one)."""
    out, seen = [], {}
    first = rows[0].line if rows else 0
    for row in rows:
        if not row.name or not row.cls:
            out.append((row.line, f"{row.written or row.cls!r} is not an `image_name,class` "
                                  "line"))
            continue
        if row.name in seen:
            out.append((row.line, f"image {row.written!r} is listed twice (first on line "
                                  f"{seen[row.name]}); each image takes one class"))
            continue
        seen[row.name] = row.line
        if row.name not in images:
            near = difflib.get_close_matches(row.name, sorted(images), n=1, cutoff=0.6)
            hint = " (a header line? start it with #)" if row.line == first else \
                f" (did you mean {near[0]!r}?)" if near else ""
            out.append((row.line, f"unknown image {row.written!r}: the campaign's images are "
                                  f"{_some(sorted(images))}{hint}"))
        for model in models:
            problem = _class_problem(row.cls, model)
            if problem:
                out.append((row.line, problem))
    return out


def _class_problem(cls: str, model) -> str:
    """Why ``cls`` names no single class of ``model`` ('' when it does)."""
    if _INDEX.fullmatch(cls):
        index = int(cls)
        if not 0 <= index < model.classes:
            return (f"class {index} is out of range: model {model.name!r} has "
                    f"{model.classes} classes (0..{model.classes - 1})")
        return ""
    if not model.labels:
        return (f"class {cls!r} is a name, but model {model.name!r} has no labels: give the "
                "class index, or the model's labels file")
    matches = [i for i, label in enumerate(model.labels) if label == cls]
    if not matches:
        near = difflib.get_close_matches(cls, model.labels, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"unknown class {cls!r} for model {model.name!r}{hint}"
    if len(matches) > 1:
        return (f"class {cls!r} names {len(matches)} classes of model {model.name!r} "
                f"({', '.join(map(str, matches))}): give the index")
    return ""


def _some(names: list[str], shown: int = 5) -> str:
    more = f", … ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
