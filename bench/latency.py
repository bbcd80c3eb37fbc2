"""Per-image latency and build time: unscheduled vs scheduled TVM builds vs ONNX Runtime.

    python bench/latency.py [--models default,squeezenet,resnet50,mobilenet]
                            [--targets llvm-avx2,llvm-avx512] [--repeat 5] [--threads 2]

For each model and each scheduled CPU profile that runs here, builds the model with the
profile (``schedule = "default"``) and with its ``-naive`` twin (``schedule = "none"``, TVM
0.27's default CPU build), times both over the default photographs, and times ONNX Runtime on
the same preprocessed inputs for ONNX models, all in this one process, so the ratios printed
at the end compare figures measured side by side. Build time includes the Relax lowering (and
scheduling) and the code generation. TVM and ONNX Runtime both use ``--threads`` threads.

Models: ``default`` is the embedded ShuffleNet; ``squeezenet`` and ``resnet50`` are the model
zoo architectures that ship inside the ``onnx`` wheel (their weights are constants, so their
outputs say nothing, but their kernels are the real ones); ``mobilenet`` is the quantized
MobileNet fixture in ``../shared/fixtures`` (skipped when that folder is absent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

MODELS = ("default", "squeezenet", "resnet50", "mobilenet")
FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / \
    "mobilenet_v1_0.25_128_quant.tflite"


def model_path(name: str) -> str | None:
    """The file behind a model name (None: the embedded default)."""
    if name == "default":
        return None
    if name == "mobilenet":
        return str(FIXTURE)
    import onnx

    return str(Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" /
               f"light_{name}.onnx")


def median_ms(run, batch, repeat: int) -> float:
    """Median per-image milliseconds of ``run(image)`` over ``repeat`` passes (after one
    warm-up pass)."""
    for x in batch:
        run(x)
    times = []
    for _ in range(repeat):
        for x in batch:
            start = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def onnxruntime_ms(model, batch, repeat: int, threads: int) -> float | None:
    if model.format != "onnx":
        return None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.source_bytes, options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return median_ms(lambda x: session.run(None, {name: x[None]}), batch, repeat)


def tvm_ms(model, profile, batch, repeat: int) -> tuple[float, float]:
    """(build seconds, median ms per image) of ``model`` built for ``profile``."""
    import mutatenn_passes as mn

    start = time.perf_counter()
    artifact = mn.build(model, profile)
    artifact.run_array(batch[:1])  # loads the library
    build_s = time.perf_counter() - start
    return build_s, median_ms(lambda x: artifact.run_array(x[None]), batch, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--targets", default="llvm-x86-64,llvm-avx2,llvm-avx512",
                        help="scheduled CPU profiles; each is paired with its -naive twin "
                             "(default: %(default)s; those that cannot run here are skipped)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed passes over the images for scheduled builds and ONNX "
                             "Runtime; unscheduled builds get one (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for TVM and ONNX Runtime (default: all cores, "
                             "%(default)s)")
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)

    import mutatenn_passes as mn
    from mutatenn_passes.images import preprocess

    images = mn.default_images()
    rows = []
    for name in args.models.split(","):
        path = model_path(name)
        if name == "mobilenet" and not FIXTURE.is_file():
            print(f"{name}: skipped, {FIXTURE} not found")
            continue
        model = mn.load_model(path)
        batch = preprocess(images, model.preprocess)
        ort_ms = onnxruntime_ms(model, batch, args.repeat, args.threads)
        for target in args.targets.split(","):
            scheduled = mn.get_profile(target)
            naive = mn.get_profile(f"{target}-naive")
            ok, why = scheduled.can_run()
            if not ok:
                print(f"{name} {target}: skipped, {why}")
                continue
            naive_build, naive_ms = tvm_ms(model, naive, batch, 1)
            sched_build, sched_ms = tvm_ms(model, scheduled, batch, args.repeat)
            rows.append((name, target, naive_build, sched_build, naive_ms, sched_ms, ort_ms))
            print(f"{name} {target}: naive {naive_ms:.1f} ms (build {naive_build:.1f} s), "
                  f"scheduled {sched_ms:.1f} ms (build {sched_build:.1f} s)"
                  + (f", ONNX Runtime {ort_ms:.1f} ms" if ort_ms else ""), flush=True)

    print(f"\n{os.cpu_count()} CPUs, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}; ms are per-image medians")
    header = ("model", "target", "naive ms", "sched ms", "ORT ms", "naive/sched",
              "sched/ORT", "build naive s", "build sched s", "build ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, target, nb, sb, nms, sms, oms in rows:
        cells = (name, target, f"{nms:.1f}", f"{sms:.1f}",
                 f"{oms:.1f}" if oms else "-", f"{nms / sms:.1f}x",
                 f"{sms / oms:.2f}x" if oms else "-", f"{nb:.1f}", f"{sb:.1f}",
                 f"{sb / nb:.2f}x")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
