"""Per-image latency and build time: scheduled TVM builds vs ONNX Runtime (LiteRT for TFLite),
measured side by side.

    python bench/latency.py [--models default,squeezenet,resnet50,mobilenet]
                            [--targets llvm-avx2,llvm-x86-64] [--runs 15] [--warmup 3]
                            [--threads N] [--naive]

For each model and each scheduled CPU profile that runs here, builds the model with the
profile (``schedule = "default"``) and times it against the reference runtime of its format
(ONNX Runtime; LiteRT with XNNPACK for the TFLite fixture, ``mobilenet``) on the same
preprocessed photographs, one image per call as a user runs them (``Artifact.run_array`` on
one image; ``InferenceSession.run`` / ``Interpreter.invoke`` on one image), both on the same
threads. The two are **interleaved** (TVM, reference, TVM, reference, ...) after ``--warmup`` turns each, so a change in the machine's load hits both
alike. A turn is an untimed call then a timed one, then a pause (``--pause-ms``): the timed
call finds the runtime's threads awake, as running images back to back does, and the pause
lets them go idle before the other runtime's turn (TVM's pool workers poll for work for a while
after each call, ``TVM_THREAD_POOL_SPIN_COUNT``; ONNX Runtime's threads spin too). Even
so, ONNX Runtime's own times are bimodal here: ShuffleNet alone in a process ran 7.9-8.6 ms
back to back and 3.3 ms at best with pauses; SqueezeNet a steady 2.8 ms.

"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


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


def cpu_line() -> str:
    """The CPU model and the widest vector ISA it has."""
    from mutatenn_passes.targets import cpu_features

    flags = cpu_features()
    isa = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                         ("avx", "AVX"), ("sse2", "SSE2")) if flag in flags),
               "unknown ISA")
    if isa == "AVX2" and "fma" in flags:
        isa = "AVX2+FMA"
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{model}, {isa}, {os.cpu_count()} logical CPUs"


def spread(times: list[float]) -> str:
    return f"{min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f}"


def interleaved(calls: dict, batch, runs: int, warmup: int, pause_s: float) -> dict:
    """{name: [ms of each timed call]}: the ``calls`` take turns on the same image, one image
    per call, cycling through ``batch``. Each turn is an untimed call then a timed one (the
    runtime's threads awake, as when a user runs images back to back), then a pause in which
    its threads go idle before the other runtime's turn: TVM's pool workers keep polling for
    work (a ``sched_yield`` loop) for a while after each call, and ONNX Runtime's spin too."""
    times = {name: [] for name in calls}
    for i in range(warmup + runs):
        x = batch[i % len(batch)][None]
        for name, call in calls.items():
            call(x)
            start = time.perf_counter()
            call(x)
            elapsed = (time.perf_counter() - start) * 1000.0
            if i >= warmup:
                times[name].append(elapsed)
            time.sleep(pause_s)
    return times


def reference_session(model, threads: int):
    """(runtime name, a callable running one image) on the runtime the model's format was
    made for: ONNX Runtime for ONNX, LiteRT (XNNPACK) for TFLite; both on ``threads``."""
    if model.format == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=model.source_bytes, num_threads=threads)
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]["index"]
        sink = interpreter.get_output_details()[0]["index"]

        def run_litert(x):
            interpreter.set_tensor(source, x)
            interpreter.invoke()
            return interpreter.get_tensor(sink)

        return "LiteRT", run_litert
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.source_bytes, options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return "ONNX Runtime", lambda x: session.run(None, {name: x})


def built(model, profile):
    """(build seconds, artifact) with the library loaded."""
    import mutatenn_passes as mn

    start = time.perf_counter()
    artifact = mn.build(model, profile)
    artifact._machine()  # loads the library (an exported one for C profiles)
    return time.perf_counter() - start, artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--targets", default="llvm-avx2,llvm-x86-64,llvm-avx512",
                        help="scheduled CPU profiles (default: %(default)s; those that cannot "
                             "run here are skipped)")
    parser.add_argument("--runs", type=int, default=15,
                        help="timed calls of each runtime, interleaved (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls of each first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for TVM and ONNX Runtime (default: the physical cores)")
    parser.add_argument("--pause-ms", type=float, default=300.0,
                        help="pause after each turn (default: %(default)s)")
    parser.add_argument("--also-threads", type=int, default=None,
                        help="also time TVM on a pool of this many threads")
    parser.add_argument("--naive", action="store_true",
                        help="also build and time each profile's -naive twin")
    args = parser.parse_args()
    if args.runs < 9:
        parser.error("--runs must be at least 9 (a median of fewer runs does not hold still)")

    from mutatenn_passes.threads import physical_cores

    threads = args.threads or physical_cores()
    other_pool = None
    if args.also_threads:
        import concurrent.futures

        import tvm

        other_pool = concurrent.futures.ThreadPoolExecutor(1)
        os.environ["TVM_NUM_THREADS"] = str(args.also_threads)
        size = other_pool.submit(tvm.get_global_func("runtime.NumThreads")).result()
        assert size == args.also_threads, size
    os.environ["TVM_NUM_THREADS"] = str(threads)  # before TVM creates its pool

    import mutatenn_passes as mn
    from mutatenn_passes.images import preprocess

    load_before = os.getloadavg()
    print(f"{cpu_line()}; {threads} thread(s) each; load average "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    images = mn.default_images()
    rows = []
    for name in args.models.split(","):
        path = model_path(name)
        if name == "mobilenet" and not FIXTURE.is_file():
            print(f"{name}: skipped, {FIXTURE} not found")
            continue
        model = mn.load_model(path)
        batch = preprocess(images, model.preprocess)
        ref_name, ref_run = reference_session(model, threads)
        for target in args.targets.split(","):
            scheduled = mn.get_profile(target)
            ok, why = scheduled.can_run()
            if not ok:
                print(f"{name} {target}: skipped, {why}")
                continue
            sched_build, artifact = built(model, scheduled)
            calls = {"tvm": lambda x: artifact.run_array(x)}
            if other_pool is not None:
                calls["tvm_other"] = lambda x: other_pool.submit(artifact.run_array, x).result()
            calls["reference"] = ref_run
            times = interleaved(calls, batch, args.runs, args.warmup, args.pause_ms / 1000)
            naive_build = naive_ms = None
            if args.naive:
                naive_build, naive = built(model, mn.get_profile(f"{target}-naive"))
                naive_ms = statistics.median(naive.run_array(batch)[1])
            row = dict(model=name, target=target, reference=ref_name, tvm=times["tvm"],
                       reference_ms=times["reference"],
                       other=times.get("tvm_other"), build=sched_build,
                       naive_build=naive_build, naive_ms=naive_ms)
            rows.append(row)
            print(f"{name} {target}: TVM {spread(times['tvm'])} ms (build {sched_build:.1f} s)"
                  + f", {ref_name} {spread(times['reference'])} ms"
                  + (f", TVM on {args.also_threads} thread(s) {spread(times['tvm_other'])} ms"
                     if other_pool is not None else "")
                  + (f", naive {naive_ms:.0f} ms (build {naive_build:.1f} s)"
                     if args.naive else ""), flush=True)

    load_after = os.getloadavg()
    print(f"\n{cpu_line()}; {threads} thread(s) each; load average {load_before[0]:.2f} "
          f"before, {load_after[0]:.2f} after; {args.runs} interleaved runs of one image "
          f"after {args.warmup} warm-up runs; ms as min / median / max")
    header = ["model", "target", "reference", "TVM ms", "reference ms", "TVM/ref (medians)",
              "TVM/ref per pair (min-max)", "TVM/ref (minima)", "build s"]
    if other_pool is not None:
        header += [f"TVM {args.also_threads} thread(s) ms", "its /ref (medians)"]
    if args.naive:
        header += ["naive ms", "naive build s", "build / naive"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        tvm_ms, ref_ms = row["tvm"], row["reference_ms"]
        pairs = [t / r for t, r in zip(tvm_ms, ref_ms)]
        cells = [row["model"], row["target"], row["reference"], spread(tvm_ms), spread(ref_ms),
                 f"**{statistics.median(tvm_ms) / statistics.median(ref_ms):.2f}x**",
                 f"{min(pairs):.2f}-{max(pairs):.2f}x", f"{min(tvm_ms) / min(ref_ms):.2f}x",
                 f"{row['build']:.1f}"]
        if other_pool is not None:
            other = row["other"]
            cells += [spread(other),
                      f"{statistics.median(other) / statistics.median(ref_ms):.2f}x"]
        if args.naive:
            cells += [f"{row['naive_ms']:.0f}", f"{row['naive_build']:.1f}",
                      f"{row['build'] / row['naive_build']:.2f}x"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
