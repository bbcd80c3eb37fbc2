"""A campaign's inputs, checked before any work: what the files it names hold.

`config` checks the campaign file itself (keys, values, that named files exist). What those
files hold is checked here, by `run --check` and at the start of every run, before the output
folder is touched, a worker is started or anything is planned:

* every image is decoded (an undecodable ``.jpg`` is a problem naming its path, at the line of
  the ``[images] paths`` entry that brought it in); the entries of a folder that are not
  images (`images.IMAGE_EXTENSIONS`) are skipped and listed; two images with the same name
  (file stem: results and the labels file name images by it) or one file listed twice are
  problems;
* every model is imported; a ``labels`` file whose line count differs from the model's class
  count (a 1001-line ImageNet file on a 1000-class model names every class by its neighbour's
  label) is refused at the line of the model's ``labels`` key unless its ``[[models]]`` table
  says ``label_offset``;
* the ``[images] labels`` file is read line by line (`image_labels`): unknown images, unknown or
  ambiguous classes and images listed twice are problems at their line of that file.

Every problem is reported at once, one line each, as one `ConfigError` (`config.Problems`).
The decoded images and imported models are handed to planning, so nothing is read twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ImageLoadError, MutateNNError
from . import image_labels
from .campaign_config import CampaignConfig
from .problems import Problems


@dataclass
class CampaignInputs:
    """A campaign's images (decoded, in order) and models (imported, in ``[[models]]``
    order), the folder entries skipped as not images, and the seconds the checks took."""

    images: list
    models: list
    skipped: list[Path] = field(default_factory=list)
    seconds: float = 0.0


class _Recorded:
    """Locates problems at the keys `config` recorded (`CampaignConfig.locations`)."""

    what = "campaign's inputs"

    def __init__(self, config: CampaignConfig):
        self.config = config
        self.source = config.source

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        return self.config.locate(path)


def check_inputs(config: CampaignConfig, say=None) -> CampaignInputs:
    """Decode, import and read everything ``config`` names (see the module docstring);
    ``say`` is told each step. Raises one `ConfigError` listing every problem."""
    say = say or (lambda message: None)
    start = time.perf_counter()
    problems = Problems(_Recorded(config))
    say("decoding images")
    images, names, skipped = _images(config, problems)
    models = _models(config, problems, say)
    if config.image_labels:
        rows = image_labels.read_rows(config.image_labels)
        shown = _shown(config.image_labels)
        for line, message in image_labels.problems(rows, names,
                                                   [m for m in models if m is not None]):
            problems.add_in_file(shown, line, message)
    problems.raise_if_any()
    return CampaignInputs(images=images, models=models, skipped=skipped,
                          seconds=time.perf_counter() - start)


def _images(config: CampaignConfig, problems: Problems) -> tuple[list, set[str], list[Path]]:
    """The decoded images, the names of every image file found (decodable or not), and the
    skipped folder entries."""
    from ...images import default_images, load_image, path_images

    if config.images is None:
        try:
            images = default_images()
        except ImageLoadError as exc:
            problems.add(("images",), str(exc))
            return [], set(), []
        return images, {im.name for im in images}, []
    images, skipped, by_file, by_name = [], [], {}, {}
    for k, entry in enumerate(config.images):
        where = ("images", "paths", k)
        if not Path(entry).exists():  # `config` has reported it
            continue
        found, passed = path_images(entry)
        skipped += passed
        for path in found:
            real = path.resolve()
            if real in by_file:
                problems.add(where, f"image {_shown(path)} is listed twice (also by entry "
                                    f"{by_file[real] + 1} of paths): it would count twice")
                continue
            by_file[real] = k
            if path.stem in by_name:
                problems.add(where, f"two images are named {path.stem!r}: "
                                    f"{_shown(by_name[path.stem])} and {_shown(path)}; results "
                                    "and the labels file name images by file stem: rename "
                                    "one")
                continue
            by_name[path.stem] = path
            try:
                images.append(load_image(path))
            except ImageLoadError as exc:
                problems.add(where, str(exc))
    if not by_name and not problems.items:
        from ...images import IMAGE_EXTENSIONS

        problems.add(("images", "paths"), f"no images found in {', '.join(config.images)} "
                                          f"(image extensions: {' '.join(IMAGE_EXTENSIONS)})")
    return images, set(by_name), skipped


def _models(config: CampaignConfig, problems: Problems, say) -> list:
    """The imported models (None where importing failed: a problem at its ``path``)."""
    from ...model import load_model

    models = []
    for i, m in enumerate(config.models):
        say(f"importing model {m.path or 'embedded default'}")
        try:
            model = load_model(m.path, **m.overrides())
        except MutateNNError as exc:
            problems.add(("models", i, "path"), str(exc))
            models.append(None)
            continue
        if m.labels and model.label_mismatch and m.label_offset is None:
            problems.add(("models", i, "labels"), _label_mismatch(m.labels, model))
        models.append(model)
    return models


def _label_mismatch(path: str, model) -> str:
    lines, classes = len(model.labels), model.classes
    extra = lines - classes
    first = "line names" if extra == 1 else f"{extra} lines name"
    hint = f"; label_offset = {extra} if its first {first} no class" if extra > 0 else ""
    return (f"labels file {_shown(path)} has {lines} lines for the model's {classes} classes, "
            f"so classes may be named by other classes' labels: set label_offset in this "
            f"[[models]] table (line n + label_offset names class n{hint}), or fix the file")


def _shown(path) -> str:
    """``path`` relative to the current folder when it is inside it, else as it is."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
