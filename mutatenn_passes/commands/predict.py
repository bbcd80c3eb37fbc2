"""`mutatenn predict`: build a model for one target and classify images with it.

With ``--reference`` the unmutated model also runs in its native runtime (ONNX Runtime, LiteRT)
on the same preprocessed images, and each image's reference top-K is printed beside TVM's,
with the agreement (`mutatenn_passes.reference`).
"""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from ..build import build
from ..errors import ReferenceUnavailableError
from ..images import load_images
from ..model import load_model
from ..ui import console, step


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="build a model for a target and classify images",
        description="Build MODEL (default: the embedded ShuffleNet with synthetic weights) for "
                    "TARGET and print each image's top-K classes and latency.")
    p.add_argument("images", nargs="*", metavar="IMAGES",
                   help="image files or folders (default: the embedded photographs)")
    add_model_arguments(p)
    p.add_argument("--target", default="llvm-x86-64",
                   help="target profile name or .toml path (default: llvm-x86-64; "
                        "see `mutatenn targets`)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes per image (5)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.add_argument("--reference", action="store_true",
                   help="also run the model in its native runtime (ONNX Runtime or LiteRT) on "
                        "the same inputs and print its top-K and the agreement")
    p.set_defaults(func=run)


def add_model_arguments(p) -> None:
    """The model flags shared by every command that loads a model."""
    p.add_argument("--model", metavar="PATH",
                   help="ONNX or TFLite model file (default: embedded ShuffleNet)")
    p.add_argument("--labels", metavar="FILE", help="label file, line N names class N")
    p.add_argument("--size", metavar="HxW", help="override input size, e.g. 224x224")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), help="override input layout")
    p.add_argument("--bgr", action="store_true", help="feed channels in BGR order")
    p.add_argument("--raw", action="store_true", default=None,
                   help="feed raw uint8 pixels (no scaling or normalisation)")
    p.add_argument("--mean", type=float, nargs=3, metavar="M", help="per-channel mean")
    p.add_argument("--std", type=float, nargs=3, metavar="S", help="per-channel std")
    p.add_argument("--scale", type=float, help="pixel scale applied before mean/std")


def model_from_args(args):
    """Load the model the shared flags describe."""
    overrides = {"labels": args.labels, "layout": args.layout, "raw": args.raw,
                 "mean": args.mean, "std": args.std, "scale": args.scale}
    if args.bgr:
        overrides["channel_order"] = "BGR"
    if args.size:
        from ..errors import ModelLoadError

        try:
            height, width = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise ModelLoadError(f"--size {args.size!r}: expected HxW, e.g. 224x224") from None
        overrides.update(height=height, width=width)
    with step("importing model"):
        return load_model(args.model, **overrides)


def _reference(model, preds, top: int) -> tuple[dict | None, str]:
    """The comparison with the reference runtime, or (None, why it is unavailable)."""
    from ..reference import compare

    try:
        return compare(model, preds.inputs, preds.outputs,
                       names=[p.image for p in preds.images], top=top), ""
    except ReferenceUnavailableError as exc:
        return None, str(exc)


def run(args) -> int:
    model = model_from_args(args)
    images = load_images(args.images or None)
    with step(f"building {model.name} for {args.target}"):
        artifact = build(model, args.target)
    preds = artifact.run(images, k=args.top)
    reference, unavailable = None, ""
    if args.reference:
        with step("running the reference runtime"):
            reference, unavailable = _reference(model, preds, args.top)
    if args.json:
        for i, p in enumerate(preds.images):
            line = {"model": model.name, "target": artifact.profile.name, **p.as_dict()}
            if reference:
                line["reference"] = {"runtime": reference["runtime"],
                                     **reference["images"][i]}
            print(json.dumps(line))
        if args.reference:
            print(json.dumps({"model": model.name, "target": artifact.profile.name,
                              "reference_summary": reference and
                              {"runtime": reference["runtime"], "unit": reference["unit"],
                               **reference["summary"]},
                              "reference_unavailable": unavailable or None}))
        return 0
    for note in model.notes:
        console.print(f"[yellow]note:[/] {note}")
    table = Table(title=f"{model.name} on {artifact.profile.name} "
                        f"(built in {artifact.build_seconds:.1f} s)")
    table.add_column("image")
    table.add_column("rank", justify="right")
    table.add_column("class", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("latency", justify="right")
    if reference:
        table.add_column("ref class", justify="right")
        table.add_column("ref label")
        table.add_column("ref score", justify="right")
    for i, p in enumerate(preds.images):
        for rank, (cls, label, score) in enumerate(zip(p.classes, p.labels, p.scores), 1):
            row = [p.image if rank == 1 else "", str(rank), str(cls), label or "-",
                   f"{score:.4g}", f"{p.latency_ms:.1f} ms" if rank == 1 else ""]
            if reference:
                ref = reference["images"][i]
                ref_cls = ref["reference_classes"][rank - 1]
                row += [str(ref_cls), model.label(ref_cls) or "-",
                        f"{ref['reference_scores'][rank - 1]:.4g}"]
            table.add_row(*row, end_section=rank == len(p.classes))
    console.print(table)
    if reference:
        summary = reference["summary"]
        colour = "green" if summary["agree"] else "bold red"
        console.print(f"[{colour}]reference:[/] {escape(summary['verdict'])}", soft_wrap=True)
    elif unavailable:
        console.print(f"[yellow]reference unavailable:[/] {escape(unavailable)}",
                      soft_wrap=True)
    return 0
