"""The original's activations at its cuts, for runs from the first changed cut (`prefix_runs`;
the campaign's ``prefix_reuse``).

They are computed once per model, target and images, in a child forked for that (it runs
generated code, which a worker or the zygote must not: they fork), and kept as one ``.npy``
file per cut in the campaign's temporary folder, which every local worker reads memory-mapped:
the page cache holds them in memory while it can, the disk past that. Two workers that compute
them at once write the same bytes; each file appears whole (written aside, then renamed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .processes import error_text
from .sandbox import RunOutcome, run_in_child

INDEX = "cuts.json"

#: Seconds the child computing them may take (one pass of the images through the original:
#: seconds even for ResNet50 at 50 images); past it, the mutants run from the images.
CAPTURE_TIMEOUT = 600.0


def load_or_capture(original, batch: np.ndarray, folder: Path) -> list[np.ndarray] | None:
    """The activations of ``batch`` at ``original``'s cuts, item k - 1 for cut k
    (`prefix_runs.cut_activations`), from ``folder``, computed into it first when absent;
    None when the original cannot be cut or computing them failed (logged: the mutants then
    run from the images)."""
    if not (folder / INDEX).exists():
        outcome = run_in_child(lambda: _capture(original, batch, folder), CAPTURE_TIMEOUT)
        if outcome.status != "ok":
            print(f"runs start at the images: the original's activations at its cuts could "
                  f"not be computed ({outcome.error})", flush=True)
            return None
    count = json.loads((folder / INDEX).read_text())["cuts"]
    if count is None:
        return None
    return [np.load(folder / f"cut_{k}.npy", mmap_mode="r") for k in range(1, count + 1)]


def _capture(original, batch: np.ndarray, folder: Path) -> RunOutcome:
    """In the child: compute the activations, write one file per cut, then the index (a
    failure is the outcome's error, worded as what it is: no mutant ran)."""
    try:
        _write_cuts(original, batch, folder)
    except Exception as exc:
        return RunOutcome("crashed", error_text(exc))
    return RunOutcome("ok")


def _write_cuts(original, batch: np.ndarray, folder: Path) -> None:
    from ...prefix_runs import cut_activations

    folder.mkdir(parents=True, exist_ok=True)
    cuts = cut_activations(original, batch)
    for k, array in enumerate(cuts or [], 1):
        _write(folder / f"cut_{k}.npy", lambda f, a=array: np.save(f, a))
    _write(folder / INDEX,
           lambda f: f.write(json.dumps({"cuts": None if cuts is None else len(cuts)}).encode()))


def _write(path: Path, write) -> None:
    """``write(file)`` into a file beside ``path``, renamed to ``path`` once complete."""
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    with open(aside, "wb") as f:
        write(f)
    os.replace(aside, path)
