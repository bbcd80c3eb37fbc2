"""The campaign file's schema, declared once as data: every table, every key, its type, its
default, and its help text.

One declaration serves three readers: the validation (`campaign_file`: a value its `Type`
rejects is reported as "<key> must be <type.must>, not <value>"), the example campaign that
`mutatenn init` writes and `mutatenn run` runs without a file (`template`: each key's help
and what it must be, as comments above the key), and the command line's flag help
(``--workers``' default is `CAMPAIGN_KEYS`' default). Keys whose type is None are checked
against the world by the reader: files that must exist, target profiles, operator names, site
selections.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Callable

#: How an operator's selected sites become mutants.
MODES = ("each", "together")


@dataclass(frozen=True)
class Type:
    """What a value must be: a check, and the words a message and the template say."""

    check: Callable[[Any], bool]
    must: str


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def nonempty_str(v) -> bool:
    return isinstance(v, str) and bool(v)


def _three_numbers(v) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)


def one_of(*choices: str, must: str = "") -> Type:
    return Type(lambda v: isinstance(v, str) and v in choices,
                must or "one of " + ", ".join(choices))


def is_ray_address(v) -> bool:
    """``auto`` or ``HOST:PORT`` (a Ray head's GCS address, as `ray start --head` prints)."""
    if v == "auto":
        return True
    host, _, port = v.rpartition(":") if isinstance(v, str) else ("", "", "")
    return bool(host) and not any(c.isspace() or c == "/" for c in host) \
        and port.isdigit() and 0 < int(port) < 65536


BOOL = Type(lambda v: isinstance(v, bool), "true or false")
TABLE = Type(lambda v: isinstance(v, dict), "a table")
NAME = Type(nonempty_str, "a non-empty string")
COUNT = Type(lambda v: is_int(v) and v >= 0, "a non-negative integer")
POSITIVE_INT = Type(lambda v: is_int(v) and v >= 1, "a positive integer")
POSITIVE_NUMBER = Type(lambda v: _is_number(v) and v > 0, "a positive number")
THREE_NUMBERS = Type(_three_numbers, "three numbers")


@dataclass(frozen=True)
class Key:
    """One key of a campaign table.

    ``type`` checks a given value (None: the reader checks it); ``default`` applies when the
    key is absent; ``help`` says what the key means (the template's comment); ``example`` is
    the TOML text `template` writes for it (commented out when ``commented``; no example: the
    key is documented by its help alone).
    """

    name: str
    default: Any = None
    type: Type | None = None
    help: str = ""
    example: str | None = None
    commented: bool = False

    @property
    def must(self) -> str:
        return self.type.must if self.type else ""

    def ok(self, value) -> bool:
        return self.type is None or self.type.check(value)


CAMPAIGN_KEYS = (
    Key("name", "campaign", NAME, "The campaign's name in reports.", '"default"'),
    Key("output", "mutatenn-campaign", Type(nonempty_str, "a folder path"),
        "Results folder: results.db (SQLite, resumable), results.json, mutants.csv, "
        "summary.csv, report.html. Rerunning the same campaign resumes: finished mutants "
        "are not redone.", '"mutatenn-campaign"'),
    Key("seed", 0, COUNT, "Seeds every sampled choice (which sites a `sample` keeps).", "0"),
    Key("workers", 2, Type(lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        "Worker processes building and running mutants (each builds on one core).", "2"),
    Key("timeout", 300.0, Type(POSITIVE_NUMBER.check,
                               "a positive number of seconds (per mutant)"),
        "Seconds one mutant may take (build + run on all images) before it is recorded "
        "`timeout`.", "120"),
    Key("keep_artifacts", False, BOOL,
        "Keep, per mutant, the exported library, Relax IR, TIR and generated sources (also: "
        "`mutatenn run --keep-artifacts`).", "false"),
    Key("incremental", True, BOOL,
        "Build each mutant incrementally: compile only the kernels that differ from the "
        "original's and link them with the original's already compiled library (LLVM CPU "
        "targets; bit-identical outputs to a full build). false: a full TVM build per mutant.",
        "true"),
    Key("prefix_reuse", False, BOOL,
        "Run each mutant's images from the first of the original's cuts where it differs "
        "(prefix reuse; incremental builds on the local executor): the original's activations "
        "there are computed once per image and kept in temporary files. Bit-identical "
        "outputs; a mutant's latency is then that of its run from the cut (also: `mutatenn run "
        "--prefix-reuse`).", "false"),
    Key("targets", ["llvm-x86-64"], None,
        "Target profile names (`mutatenn targets` lists them) or paths to profile .toml "
        "files.", '["llvm-x86-64"]'),
    Key("fail_under", None, Type(lambda v: _is_number(v) and 0 <= v <= 1,
                                 "a mutation score between 0 and 1"),
        "A CI gate: `mutatenn run` exits with code 3 when the mutation score is below this "
        "(also: `mutatenn run --fail-under 0.5`). The reports are written all the same.",
        "0.5", commented=True),
    Key("executor", "local", one_of("local", "ray", must='"local" or "ray"'),
        'Where mutants are built and run: "local" (the worker processes above) or "ray" '
        "(one actor per CPU of each node of a Ray cluster; docs/cluster.md). Also: "
        "`mutatenn run --ray ADDRESS`.", '"ray"', commented=True),
    Key("ray_address", None, Type(is_ray_address, 'a Ray cluster address: "auto" or '
                                  "HOST:PORT (what `ray start --head` prints)"),
        '"auto" (the cluster this machine belongs to) or HOST:PORT; without it, a Ray '
        "instance of `workers` CPUs on this machine.", '"auto"', commented=True),
)
MODEL_KEYS = (
    Key("path", None, None, "ONNX or TFLite, detected from the content.",
        '"models/mobilenet.tflite"', commented=True),
    Key("name", None, NAME, "The name used in reports (default: file stem).", '"mobilenet"',
        commented=True),
    Key("labels", None, None,
        "Class names, one per line; a file whose line count differs from the class count is "
        "refused unless you say the offset (label_offset).", '"models/labels.txt"',
        commented=True),
    Key("label_offset", None, Type(is_int, "an integer (line n + label_offset of the labels "
                                            "file names class n)"),
        "1 for a 1001-line ImageNet file whose line 1 is background.", "1", commented=True),
    Key("preprocess", {}, TABLE, "Override what the model file cannot say:"),
)
#: Checks of `images.Preprocess` fields (any field of it may be given).
PREPROCESS_KEYS = (
    Key("height", type=POSITIVE_INT, example="224", commented=True),
    Key("width", type=POSITIVE_INT, example="224", commented=True),
    Key("layout", type=one_of("NCHW", "NHWC", must='"NCHW" or "NHWC"'), example='"NHWC"',
        commented=True),
    Key("channel_order", type=one_of("RGB", "BGR", must='"RGB" or "BGR"'), example='"RGB"',
        commented=True),
    Key("raw", type=BOOL, help="true: feed resized uint8 pixels unchanged.", example="false",
        commented=True),
    Key("scale", type=POSITIVE_NUMBER, help="x = (pixel * scale - mean) / std.",
        example="0.00392156862745098", commented=True),
    Key("mean", type=THREE_NUMBERS, example="[0.485, 0.456, 0.406]", commented=True),
    Key("std", type=Type(lambda v: _three_numbers(v) and 0 not in v,
                         "three numbers (non-zero)"),
        example="[0.229, 0.224, 0.225]", commented=True),
    Key("resample", type=one_of("bicubic", "bilinear", "nearest", "lanczos"),
        example='"bicubic"', commented=True),
    Key("dtype", type=one_of("float32", "float16", "uint8", "int8",
                             must="float32, float16, uint8 or int8"),
        help="The input tensor type.", example='"float32"', commented=True),
)
IMAGES_KEYS = (
    Key("paths", None, None,
        "Image files and/or folders; omit `paths` for the embedded default photographs. In a "
        "folder, files ending in .png .jpg .jpeg .bmp .gif .tif .tiff .webp are images; other "
        "entries are skipped (the run lists them). Every image is decoded before any work; "
        "names (file stems) must be unique.", '["images/"]', commented=True),
    Key("labels", None, None,
        "Reference labels for the statistical kill test: one `image_name,class` line per "
        "image (class = index or label; `#` starts a comment), each image at most once; "
        "unknown images and classes are refused with their line. Without it the original "
        "model's top-1 is the reference.", '"images/labels.csv"', commented=True),
)
MODE = Key("mode", "each", one_of(*MODES),
           '"each": one first-order mutant per selected site (the default); "together": one '
           "mutant rewriting all selected sites at once (the paper's site ranges).", '"each"')
SITES = Key("sites", "all", None,
            'Which sites: "all", an index, a list of indices, or a range {start = 0, '
            "stop = 10}.", '"all"')
SAMPLE = Key("sample", 0, Type(COUNT.check, "a non-negative integer (0 = every selected "
                                            "site)"),
             "Keep a seeded sample of this many of the selected sites per operator. The "
             "default campaign samples 5 sites per operator so that it finishes in minutes.",
             "5")
#: [operators] itself; any other key of it names an operator (a table of `PER_OPERATOR_KEYS`).
OPERATORS_KEYS = (
    Key("use", ["paper"], None,
        "Operator IDs, category names, or presets: paper (the paper's operators), all, graph, "
        "kernel, deepmutation, quantization, faults.", '["paper"]'),
    Key("exclude", [], None, "Operators taken out of `use`.", "[]"),
    MODE, SITES, SAMPLE,
    Key("ignore", [], None,
        "Mutants to keep out of the mutation score (known equivalent, or accepted survivors), "
        "each by operator and site ID (`mutatenn mutants` lists the IDs) with the reason. They "
        "stay in every report, marked ignored with their reason; an entry that matches no "
        "mutant is warned about.",
        '[\n  {id = "add_to_subtract:main/lv10", reason = "adds a zero bias: equivalent"},\n]',
        commented=True),
)
PER_OPERATOR_KEYS = (
    Key("mode", type=MODE.type), Key("sites"), Key("sample", type=SAMPLE.type),
    Key("kernels", None, Type(nonempty_str, "a glob over kernel names"),
        "Kernel level only: which kernels, by name.", '"fused_conv2d*"', commented=True),
    Key("phase", None, one_of("s_tir", "lowered"),
        "Kernel level only: where in the TIR pipeline the operator runs.", '"s_tir"',
        commented=True),
    Key("params", {}, TABLE, "The operator's parameters (`mutatenn operators` lists them).",
        "{amount = 1}", commented=True),
)
#: One entry of ``[operators] ignore``.
IGNORE_KEYS = (
    Key("id", None, Type(lambda v: nonempty_str(v) and ":" in v.strip(":"),
                         '"<operator>:<site id>" (the IDs `mutatenn mutants` lists)')),
    Key("reason", None, Type(lambda v: nonempty_str(v) and bool(v.strip()),
                             "a non-empty string saying why the mutant is ignored")),
)
IGNORE_FORM = '{id = "<operator>:<site id>", reason = "why"}'
TOP_KEYS = {"campaign", "models", "images", "operators"}

_HEADER = """\
A mutatenn campaign: which models, images, targets and mutation operators to test. Run it
with `mutatenn run campaign.toml`; `mutatenn run` with no file runs exactly this campaign
(the embedded default). Every key is optional; relative paths are resolved against the
folder holding this file. Each key's comment says what it means and what it must be."""
_MODELS = """\
Models: zero or more [[models]] tables; none means the embedded default model (ShuffleNet
with seeded synthetic weights)."""
_PER_OPERATOR = """\
Per-operator settings override the ones above (mode, sites, sample), e.g. the paper's ranged
mutant in [operators.relu_to_sigmoid]; kernel-level operators also take kernels, phase and
params:"""


def _comment(text: str, width: int = 92) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width)]


def _key_lines(key: Key, commented: bool = False) -> list[str]:
    """A key's help (with what it must be) as comments, then the key with its example."""
    lines = _comment(key.help) + (_comment(f"Must be {key.must}.") if key.must else [])
    if key.example is not None:
        prefix = "# " if commented or key.commented else ""
        example = key.example.split("\n")
        lines += [f"{prefix}{key.name} = {example[0]}"] + [prefix + x for x in example[1:]]
    return lines


def template() -> str:
    """The example campaign, every key documented (set, or commented out): what `mutatenn
    init` writes, and the embedded default campaign."""
    out = _comment(_HEADER) + ["", "[campaign]"]
    for key in CAMPAIGN_KEYS:
        out += _key_lines(key)
    out += [""] + _comment(_MODELS) + ["# [[models]]"]
    for key in MODEL_KEYS:
        if key.name == "preprocess":
            out += _comment(key.help) + ["# [models.preprocess]"]
            for sub in PREPROCESS_KEYS:
                out += _key_lines(sub, commented=True)
        else:
            out += _key_lines(key, commented=True)
    out += ["", "[images]"]
    for key in IMAGES_KEYS:
        out += _key_lines(key)
    out += ["", "[operators]"]
    for key in OPERATORS_KEYS:
        out += _key_lines(key)
    out += [""] + _comment(_PER_OPERATOR) + [
        "# [operators.relu_to_sigmoid]", '# mode = "together"', "# sites = {start = 0, stop = 10}",
        "# sample = 0", "#", "# [operators.loop_extent_inc]"]
    for key in PER_OPERATOR_KEYS[3:]:
        out += _key_lines(key, commented=True)
    return "\n".join(out) + "\n"
