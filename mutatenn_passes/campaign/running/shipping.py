"""A campaign's input files as bytes in Ray's object store, and back as files on each node.

A cluster node shares no folder with the campaign (the Ray driver). `pack` reads, on the
driver, every file a worker opens — the models, their label files, the images (a folder
expanded to its image files, in the order `images.load_images` reads them) — and puts each
file's bytes in the object store once. The `Shipment` it returns maps each driver path to the
file's name, content digest and object reference; it travels to every actor, and
`Shipment.local_spec` rewrites a task's paths to node-local copies, fetched and written once
per node under ``<root>/<digest>/<name>`` (the name kept, so that models and images are named
as on the driver). `Shipment.remote_spec`, on the driver, resolves what a node cannot: the
image folders, and the target profile (a `targets.TargetProfile`, which travels as data).
The embedded default model and images are part of the package, so they never travel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .messages import ModelSpec, TaskSpec


@dataclass(frozen=True)
class ShippedFile:
    """One input file in the object store: ``ref`` holds its bytes."""

    name: str
    digest: str
    ref: object  # ray.ObjectRef


@dataclass(frozen=True)
class Shipment:
    """Every input file of a campaign, by its path on the driver; ``images`` is the
    campaign's image files (folders expanded), None for the default images."""

    files: dict[str, ShippedFile]
    images: list[str] | None

    # -- on the driver --------------------------------------------------------------------
    def remote_spec(self, spec: TaskSpec, profiles: dict, timeout: float) -> TaskSpec:
        """``spec`` as a node can read it: image files instead of folders, the target
        profile itself, and the timeout for the worker to enforce on runs."""
        return dataclasses.replace(spec, images=self.images, timeout=timeout,
                                   target_ref=profiles[spec.target_ref])

    # -- on a node --------------------------------------------------------------------------
    def local_path(self, path: str, root: Path) -> str:
        """The node-local copy of the driver's file ``path`` (fetched once per node)."""
        shipped = self.files[path]
        local = root / shipped.digest / shipped.name
        if not local.is_file():
            import ray

            data = ray.get(shipped.ref)
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(f".{local.name}.{os.getpid()}.partial")
            partial.write_bytes(data)
            os.replace(partial, local)  # atomic: another actor on the node may be reading
        return str(local)

    def local_model(self, model: ModelSpec, root: Path) -> ModelSpec:
        """``model`` with its file and label file replaced by node-local copies (its cache
        key stays the driver's)."""
        overrides = dict(model.overrides)
        if isinstance(overrides.get("labels"), str):
            overrides["labels"] = self.local_path(overrides["labels"], root)
        path = None if model.path is None else self.local_path(model.path, root)
        return dataclasses.replace(model, path=path, overrides=overrides)

    def local_images(self, images: list[str] | None, root: Path) -> list[str] | None:
        return None if images is None else [self.local_path(p, root) for p in images]

    def local_spec(self, spec: TaskSpec, root: Path) -> TaskSpec:
        """A `remote_spec` with node-local paths."""
        return dataclasses.replace(spec, model=self.local_model(spec.model, root),
                                   images=self.local_images(spec.images, root))


def pack(config) -> Shipment:
    """Put every input file of ``config`` (a `config.CampaignConfig`) in the object store of
    the Ray cluster this process is connected to."""
    import ray

    from ...images import image_files

    paths = [m.path for m in config.models if m.path]
    paths += [m.labels for m in config.models if m.labels]
    images = None
    if config.images is not None:
        images = [str(p) for p in image_files(config.images)[0]]
        paths += images
    files = {}
    for path in dict.fromkeys(paths):
        data = Path(path).read_bytes()
        files[path] = ShippedFile(name=Path(path).name,
                                  digest=hashlib.sha256(data).hexdigest()[:20],
                                  ref=ray.put(data))
    return Shipment(files=files, images=images)
