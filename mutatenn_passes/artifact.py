"""Built models: run them on images, export them, and dump their IR and generated code.

An `Artifact` is what `build()` returns. Running is lazy: the TVM virtual machine is created on
first use, on the profile's device; CPU kernels then run on one thread per physical core
unless ``TVM_NUM_THREADS`` says otherwise (`threads.use_physical_cores`: TVM's own default is
half the cores on x86-64). TVM's C backend has no JIT, so C artifacts are exported to
a shared library (compiled by the system C compiler) and loaded back before running.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from .errors import MutateNNError, TargetError
from .images import Image, Preprocess, preprocess, resize_note
from .model import TensorSpec
from .targets import TargetProfile
from .threads import use_physical_cores


@dataclass
class ImagePrediction:
    """Top-k classes of one image, with scores and the time one inference took.

    ``notes`` say what happened to the image on its way in that a reader of the scores should
    know: the decoder's notes (bit depth scaled, alpha dropped) and a resize by more than
    `images.RESIZE_NOTE_FACTOR` in one axis.
    """

    image: str
    classes: list[int]
    scores: list[float]
    labels: list[str]
    latency_ms: float
    notes: list[str] = field(default_factory=list)

    @property
    def top1(self) -> int:
        return self.classes[0]

    def as_dict(self) -> dict:
        return {"image": self.image, "classes": self.classes, "scores": self.scores,
                "labels": self.labels, "latency_ms": self.latency_ms, "notes": self.notes}


@dataclass
class Predictions:
    """Per-image predictions plus the full output vectors (rows follow ``images``) and the
    preprocessed batch they came from (what a reference runtime must be fed to compare)."""

    images: list[ImagePrediction]
    outputs: np.ndarray = field(repr=False)
    inputs: np.ndarray | None = field(default=None, repr=False)

    def top1(self) -> list[int]:
        return [p.top1 for p in self.images]


def top_k(vector: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest values, ties broken by the lower index (stable)."""
    order = np.argsort(-vector.astype(np.float64), kind="stable")
    return [int(i) for i in order[:k]]


@dataclass
class Artifact:
    """A compiled model for one target, with its I/O contract and IR snapshots."""

    executable: object
    profile: TargetProfile
    input: TensorSpec
    output: TensorSpec
    preprocess: Preprocess
    labels: list[str] | None = None
    model_name: str = ""
    build_seconds: float = 0.0
    record: object = None
    #: Where ``main`` starts (prefix reuse, `build.build_incremental`'s ``from_cut``): 0, at
    #: the model's input; k > 0, at the original's k-th cut (`segmented_lowering`), so that
    #: it takes the original's activation there instead of an image.
    cut: int = 0
    _vm: object = field(default=None, repr=False)
    _tmp: object = field(default=None, repr=False)

    def device(self):
        return tvm.cuda(0) if self.profile.device == "cuda" else tvm.cpu(0)

    def _machine(self):
        if self._vm is None:
            ok, why = self.profile.can_run()
            if not ok:
                raise TargetError(f"cannot run {self.profile.name} here: {why}")
            use_physical_cores()  # before TVM creates its thread pool (see threads.py)
            runnable = self.executable
            if self.profile.kind == "c":
                self._tmp = tempfile.TemporaryDirectory(prefix="mutatenn-c-")
                lib_path = Path(self._tmp.name) / "model.so"
                self.executable.export_library(str(lib_path), options=["-O2"])
                runnable = tvm.runtime.load_module(str(lib_path))
            self._vm = relax.VirtualMachine(runnable, self.device())
        return self._vm

    def run_array(self, batch: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Run a preprocessed batch one image at a time; outputs (N, classes) and latencies."""
        vm = self._machine()
        fn = vm["main"]
        dev = self.device()
        outputs, latencies = [], []
        for x in batch:
            arg = tvm.runtime.tensor(np.ascontiguousarray(x[None]), dev)
            start = time.perf_counter()
            out = fn(arg)
            if isinstance(out, (list, tuple)) or hasattr(out, "__getitem__") and \
                    not hasattr(out, "numpy"):
                out = out[0]
            result = out.numpy()  # copies back, so the latency includes synchronisation
            latencies.append((time.perf_counter() - start) * 1000.0)
            outputs.append(result.reshape(-1))
        return np.stack(outputs), latencies

    def run(self, images: list[Image], k: int = 5) -> Predictions:
        """Preprocess ``images`` as one batch, run each, and rank classes."""
        if self.cut:
            raise MutateNNError(f"this artifact starts at the original's cut {self.cut}, not "
                                "at the images: run it with prefix_runs.run_from_cut")
        batch = preprocess(images, self.preprocess)
        outputs, latencies = self.run_array(batch)
        preds = []
        for image, vector, latency in zip(images, outputs, latencies):
            classes = top_k(vector, k)
            resized = resize_note(image, self.preprocess)
            preds.append(ImagePrediction(
                image=image.name, classes=classes,
                scores=[float(vector[c]) for c in classes],
                labels=[self.labels[c] if self.labels and c < len(self.labels) else ""
                        for c in classes],
                latency_ms=latency,
                notes=[*image.notes, *([resized] if resized else [])]))
        return Predictions(images=preds, outputs=outputs, inputs=batch)

    def export(self, path: str | Path) -> Path:
        """Write ``path`` (a shared library) and ``path.json`` (I/O spec, target, labels)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.executable.export_library(str(path))
        meta = {"model": self.model_name, "target": self.profile.as_dict(),
                "input": self.input.as_dict(), "output": self.output.as_dict(),
                "preprocess": self.preprocess.as_dict(), "labels": self.labels}
        path.with_name(path.name + ".json").write_text(json.dumps(meta, indent=1))
        return path

    def sources(self) -> dict[str, str]:
        """Generated code by kind: host (LLVM IR or C) and device (e.g. CUDA) sources."""
        out = {}
        pending, seen = [self.executable.mod], 0
        while pending:  # device modules are imported by the host module, so walk the tree
            module = pending.pop(0)
            pending.extend(module.imports)
            for fmt in ("cu", "c", "ll", ""):
                try:
                    text = module.inspect_source(fmt)
                except Exception:  # a module kind that cannot show this format
                    continue
                if text:
                    out[f"{seen}-{module.kind}"] = text
                    seen += 1
                    break
        return out

    def dump(self, folder: str | Path) -> list[Path]:
        """Write the Relax IR, the TIR at each phase and the generated sources to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if self.record is not None and self.record.relax_input is not None:
            written.append(folder / "relax.py")
            written[-1].write_text(self.record.relax_input.script())
        for phase, mod in (self.record.tir.items() if self.record else []):
            written.append(folder / f"tir-{phase}.py")
            written[-1].write_text(mod.script())
        suffix = {"cuda": ".cu", "c": ".c", "llvm": ".ll"}
        for name, text in self.sources().items():
            kind = name.split("-", 1)[1]
            written.append(folder / f"source-{name}{suffix.get(kind, '.txt')}")
            written[-1].write_text(text)
        return written


def load_artifact(path: str | Path) -> Artifact:
    """Load an exported artifact (library + JSON) without the original model."""
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    if not path.is_file() or not meta_path.is_file():
        raise MutateNNError(f"{path}: not an exported mutatenn artifact "
                            "(needs the library and its .json beside it)")
    meta = json.loads(meta_path.read_text())
    profile = TargetProfile(**{k: (tuple(v) if k == "requires_cpu_features" else v)
                               for k, v in meta["target"].items()})
    pre = meta["preprocess"]
    pre = Preprocess(**{**pre, "mean": tuple(pre["mean"]), "std": tuple(pre["std"])})
    spec = lambda d: TensorSpec(d["name"], tuple(d["shape"]), d["dtype"], d.get("layout", ""))
    art = Artifact(executable=None, profile=profile, input=spec(meta["input"]),
                   output=spec(meta["output"]), preprocess=pre, labels=meta.get("labels"),
                   model_name=meta.get("model", ""))
    use_physical_cores()
    art._vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), art.device())
    return art




