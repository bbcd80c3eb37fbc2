"""`mutatenn predict`: build a model for one target and classify images with it.

With ``--reference`` the unmutated model also runs in its native runtime (ONNX Runtime, LiteRT)
on the same preprocessed images, and each image's reference top-K is printed beside TVM's,
with the agreement (`mutatenn_passes.reference`).

Predictions that cannot mean what they seem are flagged, not just printed: a label file whose
count differs from the class count, and outputs that do not depend on the input, are warnings
(stderr, and ``warnings`` in every ``--json`` line); what happened to an image on its way in
(bit depth scaled, alpha dropped, a resize by more than 8x) is a note beside its row.
"""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from ..build import build
from ..errors import ModelLoadError, MutateNNError, ReferenceUnavailableError
from ..images import load_images, skipped_summary
from ..model import load_model
from ..output_checks import ignores_input
from ..targets import get_profile
from ..ui import console, errors, step


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
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes per image")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.add_argument("--reference", action="store_true",
                   help="also run the model in its native runtime (ONNX Runtime or LiteRT) on "
                        "the same inputs and print its top-K and the agreement")
    p.set_defaults(func=run)


def add_model_arguments(p) -> None:
    """The model flags shared by every command that loads a model."""
    p.add_argument("--model", metavar="PATH",
                   help="ONNX or TFLite model file (default: embedded ShuffleNet)")
    p.add_argument("--labels", metavar="FILE",
                   help="label file, one label per line (default: a file beside the model "
                        "with one line per class, if any)")
    p.add_argument("--label-offset", type=int, default=0, metavar="N",
                   help="line n+N of the label file names class n: 1 for a 1001-line "
                        "ImageNet file (first line 'background') on a 1000-class model")
    p.add_argument("--size", metavar="HxW",
                   help="override input size, e.g. 224x224 (default: from the model file)")
    p.add_argument("--layout", choices=("NCHW", "NHWC"),
                   help="override input layout (default: from the model file)")
    p.add_argument("--bgr", action="store_true", help="feed channels in BGR order, not RGB")
    p.add_argument("--raw", action="store_true", default=None,
                   help="feed raw uint8 pixels, no scaling or normalisation (default: raw for "
                        "integer inputs only)")
    p.add_argument("--mean", type=float, nargs=3, metavar="M",
                   help="per-channel mean (default: ImageNet's for float ONNX inputs, 127.5 "
                        "for float TFLite inputs)")
    p.add_argument("--std", type=float, nargs=3, metavar="S",
                   help="per-channel std (default: ImageNet's for float ONNX inputs, 127.5 "
                        "for float TFLite inputs)")
    p.add_argument("--scale", type=float,
                   help="pixel scale applied before mean/std (default: 1/255 for float ONNX "
                        "inputs, 1 for float TFLite inputs)")


def model_from_args(args):
    """Load the model the shared flags describe."""
    overrides = {"labels": args.labels, "label_offset": args.label_offset,
                 "layout": args.layout, "raw": args.raw, "mean": args.mean, "std": args.std,
                 "scale": args.scale}
    if args.bgr:
        overrides["channel_order"] = "BGR"
    if args.size:
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


def warnings_for(model, preds) -> list[str]:
    """What makes these predictions misleading, one line each (empty when nothing does)."""
    found = [f"labels: {model.label_mismatch}"] if model.label_mismatch else []
    constant = ignores_input(preds.outputs, preds.inputs)
    if constant:
        found.append(f"{model.name}: {constant}")
    return found


def run(args) -> int:
    if args.top < 1:
        raise MutateNNError(f"--top must be at least 1, not {args.top}")
    profile = get_profile(args.target)  # a bad target fails before the slow import
    model = model_from_args(args)
    images = load_images(args.images or None)
    if images.skipped:
        errors.print(f"[yellow]note:[/] {escape(skipped_summary(images.skipped))}",
                     soft_wrap=True)
    with step(f"building {model.name} for {profile.name}"):
        artifact = build(model, profile)
    preds = artifact.run(images, k=args.top)
    warnings = warnings_for(model, preds)
    reference, unavailable = None, ""
    if args.reference:
        with step("running the reference runtime"):
            reference, unavailable = _reference(model, preds, args.top)
    if args.json:
        for i, p in enumerate(preds.images):
            line = {"model": model.name, "target": artifact.profile.name, **p.as_dict(),
                    "warnings": warnings}
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
        _print_warnings(warnings)
        return 0
    for note in model.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    table = Table(title=f"{model.name} on {artifact.profile.name} "
                        f"(built in {artifact.build_seconds:.1f} s)")
    table.add_column("image", overflow="fold")
    table.add_column("rank", justify="right")
    table.add_column("class", justify="right")
    table.add_column("label", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("latency", justify="right")
    if reference:
        table.add_column("ref class", justify="right")
        table.add_column("ref label", overflow="fold")
        table.add_column("ref score", justify="right")
    for i, p in enumerate(preds.images):
        for rank, (cls, label, score) in enumerate(zip(p.classes, p.labels, p.scores), 1):
            row = [escape(p.image) if rank == 1 else "", str(rank), str(cls),
                   escape(label or "-"), f"{score:.4g}",
                   f"{p.latency_ms:.1f} ms" if rank == 1 else ""]
            if reference:
                ref = reference["images"][i]
                ref_cls = ref["reference_classes"][rank - 1]
                row += [str(ref_cls), escape(model.label(ref_cls) or "-"),
                        f"{ref['reference_scores'][rank - 1]:.4g}"]
            table.add_row(*row, end_section=rank == len(p.classes))
    console.print(table)
    for p in preds.images:
        for note in p.notes:
            console.print(f"[yellow]note:[/] {escape(p.image)}: {escape(note)}", soft_wrap=True)
    if reference:
        summary = reference["summary"]
        colour = "green" if summary["agree"] else "bold red"
        console.print(f"[{colour}]reference:[/] {escape(summary['verdict'])}", soft_wrap=True)
    elif unavailable:
        console.print(f"[yellow]reference unavailable:[/] {escape(unavailable)}",
                      soft_wrap=True)
    _print_warnings(warnings)
    return 0


def _print_warnings(warnings: list[str]) -> None:
    """Last, on stderr, so that neither a long table nor --json output hides them."""
    for warning in warnings:
        errors.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
