"""What a worker keeps between tasks: imported models, preprocessed images, each model's Relax
side lowered per target, the original built per target (for incremental builds) and the
schemata of kernel mutants it is running (`schemata`)."""

from __future__ import annotations

from .messages import ModelSpec


class WorkerCache:
    """Per-worker caches keyed by the model's ``cache_key`` (and target profile)."""

    def __init__(self, models: dict[str, object] | None = None):
        """``models``: models already imported, by ``cache_key`` (the campaign's main process
        has them from `inputs.check_inputs` and need not import them again)."""
        self._models: dict[str, object] = dict(models or {})
        self._batches: dict[tuple, tuple[list[str], object]] = {}
        self._lowered: dict[tuple, object] = {}
        self._originals: dict[tuple, object] = {}
        self._schemata: dict[str, object] = {}
        self._activations: dict[tuple, object] = {}

    def model(self, spec: ModelSpec):
        if spec.cache_key not in self._models:
            from ...model import load_model

            self._models[spec.cache_key] = load_model(spec.path, **spec.overrides)
        return self._models[spec.cache_key]

    def batch(self, spec: ModelSpec, images: list[str] | None) -> tuple[list[str], object]:
        """The image names and the batch preprocessed for the model."""
        key = (spec.cache_key, tuple(images) if images else None)
        if key not in self._batches:
            from ...images import default_images, load_images, preprocess

            imgs = load_images(images) if images else default_images()
            self._batches[key] = ([im.name for im in imgs],
                                  preprocess(imgs, self.model(spec).preprocess))
        return self._batches[key]

    def lowered(self, spec: ModelSpec, profile):
        """The model after the target's Relax lowering (`kernel_ir.lower_relax`)."""
        key = (spec.cache_key, profile.name, profile.path)
        if key not in self._lowered:
            import tvm

            from ...kernel_ir import lower_relax

            with tvm.transform.PassContext(opt_level=3):
                self._lowered[key] = lower_relax(self.model(spec).mod, profile)
        return self._lowered[key]

    def original(self, spec: ModelSpec, profile, jobs: int = 1):
        """The model's `build.OriginalBuild` for ``profile`` (its kernels compiled in ``jobs``
        processes and loaded here, so every forked run inherits the machine code)."""
        key = (spec.cache_key, profile.name, profile.path)
        if key not in self._originals:
            from ...build import prepare_original

            self._originals[key] = prepare_original(self.model(spec), profile,
                                                    lowered=self.lowered(spec, profile),
                                                    jobs=jobs)
        return self._originals[key]

    def activations(self, spec: ModelSpec, profile, images: list[str] | None, root: str):
        """The original's activations at its cuts for the batch (`activations`), under the
        folder ``root``; None when there are none (the mutants run from the images)."""
        key = (spec.cache_key, profile.name, profile.path, tuple(images) if images else None)
        if key not in self._activations:
            import hashlib
            from pathlib import Path

            from .activations import load_or_capture

            folder = Path(root) / hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            self._activations[key] = load_or_capture(self.original(spec, profile),
                                                     self.batch(spec, images)[1], folder)
        return self._activations[key]

    def schema(self, spec: ModelSpec, profile, key: str, definitions: tuple,
               from_cut: bool = False):
        """The `schemata.Schema` of the group ``key``, compiled at its first task here (the
        previous group is dropped: the executor hands out a group's tasks together). A group
        that failed to build raises its `BuildError` again at once."""
        if key not in self._schemata:
            from ...errors import BuildError
            from ...schemata import build_schema

            self._schemata.clear()
            original = self.original(spec, profile)
            try:
                self._schemata[key] = build_schema(
                    original, [d.build_arguments() for d in definitions], from_cut=from_cut)
            except BuildError as exc:
                self._schemata[key] = exc
        if isinstance(self._schemata[key], Exception):
            raise self._schemata[key]
        return self._schemata[key]
