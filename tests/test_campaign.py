"""Campaign files and planning: validation with line numbers, init, equivalence and dedup.

These tests plan (import, lower, mutate, hash) but build nothing."""

import re

import pytest

from mutatenn_passes.campaign.config.campaign_file import (default_campaign_text, load_config,
                                             parse_config)
from mutatenn_passes.campaign.planning.plan import make_plan
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.campaign.config.tomllines import KeyLines
from mutatenn_passes.cli import main
from mutatenn_passes.errors import ConfigError

BAD = """\
# a campaign with many problems
[campaign]
name = "bad"
wrokers = 2
workers = 0
timeout = -1
targets = [
  "llvm-x86-64",
  "no-such-target",
]

[[models]]
path = "missing-model.onnx"
[models.preprocess]
height = -3
colour = "red"

[images]
paths = ["no-such-folder"]

[operators]
use = ["paper", "relu_to_sigmod"]
mode = "every"
sample = -1

[operators.relu_to_sigmoid]
phase = "s_tir"

[operators.transpose_conv2d_input]
params = { axes = "diagonal" }

[operators.cond_threshold]
params = { amount = 0.5, wobble = 2 }
"""

EXPECTED = {
    4: "unknown key 'wrokers' in [campaign] (did you mean 'workers'?)",
    5: "workers must be an integer >= 1",
    6: "timeout must be a positive number",
    9: "unknown target 'no-such-target'",
    13: "model 'missing-model.onnx': no such file",
    15: "height must be a positive integer",
    16: "unknown key 'colour' in [models.preprocess]",
    19: "image path 'no-such-folder': no such file or folder",
    22: "unknown mutation operator 'relu_to_sigmod'",
    23: "mode must be one of each, together",
    24: "sample must be a non-negative integer",
    27: "relu_to_sigmoid is a graph-level operator: 'phase'",
    30: "transpose_conv2d_input: parameter axes='diagonal'",
    33: "cond_threshold: unknown parameter(s) wobble",
}


def test_every_problem_is_reported_at_once_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    lines = message.splitlines()
    assert f"{len(EXPECTED)} problem(s)" in lines[0]
    found = {}
    for line in lines[1:]:
        m = re.match(r"\s+.*bad\.toml:(\d+): (.*)", line)
        assert m, line
        found.setdefault(int(m.group(1)), []).append(m.group(2))
    for number, text in EXPECTED.items():
        assert any(text in msg for msg in found.get(number, [])), (number, text, message)
    assert len(lines) - 1 == len(EXPECTED), message


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:4" in err and "bad.toml:33" in err
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    path.write_text("[campaign\nname = 1")
    assert main(["run", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_key_lines_of_tables_arrays_and_inline_tables():
    text = ('[campaign]\nworkers = 2 # c\n"quoted.key" = "a = b"\n[[models]]\npath = "a"\n'
            '[[models]]\npath = "b"\n[models.preprocess]\nheight = 3\n'
            '[operators.x]\nparams = { axes = [0, 1], k = 2 }\n')
    k = KeyLines(text)
    assert k.line_of(("campaign", "workers")) == 2
    assert k.line_of(("campaign", "quoted.key")) == 3
    assert k.line_of(("models", 0, "path")) == 5
    assert k.line_of(("models", 1, "path")) == 7
    assert k.line_of(("models", 1, "preprocess", "height")) == 9
    assert k.line_of(("operators", "x", "params", "k")) == 11
    assert k.line_of(("operators", "x", "nothing")) == 10  # falls back to the table


def test_default_campaign_and_init(tmp_path, monkeypatch):
    config = load_config(None)
    assert config.targets == ["llvm-x86-64"]
    assert config.models[0].path is None and config.images is None
    assert config.operators and all(o.sample == 5 for o in config.operators)
    from mutatenn_passes.registry import resolve_operator_names

    assert [o.id for o in config.operators] == [s.id for s in resolve_operator_names("paper")]
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = (tmp_path / "campaign.toml").read_text()
    assert written == default_campaign_text()
    # the example documents every key a campaign file may hold (set, or commented out)
    from mutatenn_passes.campaign.config import schema

    for table in (schema.CAMPAIGN_KEYS, schema.MODEL_KEYS, schema.PREPROCESS_KEYS,
                  schema.IMAGES_KEYS, schema.OPERATORS_KEYS, schema.PER_OPERATOR_KEYS):
        for key in table:
            assert re.search(rf"^(# )?({key.name} =|\[models\.{key.name}\])", written,
                             re.M), key.name
    again = load_config(tmp_path / "campaign.toml")
    assert [o.as_dict() for o in again.operators] == [o.as_dict() for o in config.operators]
    assert main(["init"]) == 2  # refuses to overwrite
    assert main(["init", "--force"]) == 0
    assert main(["run", "--check", "campaign.toml"]) == 0


def test_equivalent_mutants_are_detected_and_equal_ir_is_planned_once(tmp_path):
    # transpose_dense_input cannot rewrite the tiny model's (1, 8) matmul input (graph
    # level), and store_f32_to_f16 leaves a store of a constant that needs no rounding (the
    # -FLT_MAX initialisation of max pooling) as it is (kernel level): equivalent, not built.
    # The same model listed twice under two names gives mutants with equal IR: the second
    # model's are duplicates of the first's, planned to be built once.
    path = tiny_campaign(tmp_path, operators="""use = ["transpose_dense_input",
       "relu_to_sigmoid", "sigmoid_to_relu", "store_f32_to_f16"]
sites = [0]
[operators.store_f32_to_f16]
sites = "all"
""", models='[[models]]\npath = "tiny.onnx"\nname = "a"\n[[models]]\npath = "tiny.onnx"\n'
            'name = "b"\n')
    plan = make_plan(load_config(path))
    assert not any(t.diff for t in plan.tasks)  # made after planning, while builds run
    diffs = plan.compute_diffs()
    assert diffs == {t.key: t.diff for t in plan.mutants() if t.planned_status is None}
    by = {(t.model, t.operator): t for t in plan.mutants()}
    assert by[("a", "transpose_dense_input")].planned_status == "equivalent"
    assert by[("a", "sigmoid_to_relu")].planned_status == "not_applicable"
    stores = [t for t in plan.mutants() if t.model == "a" and t.operator == "store_f32_to_f16"]
    equivalent = [t for t in stores if t.planned_status == "equivalent"]
    assert equivalent and len(equivalent) < len(stores)
    for t in stores:  # equivalence is decided on the IR; it agrees with what was applied
        assert (t.planned_status == "equivalent") == (not t.report["applied"]), t.report
        assert bool(t.diff) == (t.planned_status != "equivalent")
    relu_a, relu_b = by[("a", "relu_to_sigmoid")], by[("b", "relu_to_sigmoid")]
    assert relu_a.planned_status is None and relu_a.duplicate_of is None
    assert relu_a.needs_build and relu_a.diff
    assert "R.sigmoid" in relu_a.diff and "R.nn.relu" in relu_a.diff
    assert relu_b.duplicate_of == relu_a.key and not relu_b.needs_build
    assert relu_b.key != relu_a.key and relu_b.ir_hash == relu_a.ir_hash
    # every store mutant of model b duplicates model a's; builds: 2 originals, relu_a, and
    # model a's non-equivalent store mutants
    assert all(t.duplicate_of or t.planned_status for t in plan.mutants() if t.model == "b")
    assert sum(t.needs_build for t in plan.tasks) == 3 + len(stores) - len(equivalent)


def test_each_models_diff_shows_its_own_original(tmp_path):
    """Two models of other shapes (32x32 and 16x16 inputs): each mutant's diff is against
    its own model's functions, not the first model's printed ones."""
    import mutatenn_passes as mn
    from mutatenn_passes.kernel_ir import kernel_module
    from tests.campaign_inputs import tiny_classifier

    tiny_classifier(tmp_path / "small.onnx", size=16)
    path = tiny_campaign(tmp_path, operators='use = ["relu_to_sigmoid", "store_mul_epsilon"]'
                         '\nsites = [0]', models='[[models]]\npath = "tiny.onnx"\nname = "a"\n'
                         '[[models]]\npath = "small.onnx"\nname = "b"\n')
    plan = make_plan(load_config(path))
    plan.compute_diffs()
    originals = {}
    for name, file in (("a", "tiny.onnx"), ("b", "small.onnx")):
        model = mn.load_model(tmp_path / file)
        lines = set()
        for mod in (model.mod, kernel_module(model, "llvm-x86-64")):
            for _gv, func in mod.functions_items():
                lines.update(func.script(show_meta=False).splitlines())
        originals[name] = lines
    for t in plan.mutants():
        old = [line[1:] for line in t.diff.splitlines()
               if line[:1] in ("-", " ") and not line.startswith("---")]
        assert old and all(line in originals[t.model] for line in old), (t.model, t.operator)


def test_ir_hash_skips_the_functions_a_mutation_left_alone_with_the_same_result(tmp_path):
    import tvm

    import mutatenn_passes as mn
    from mutatenn_passes.campaign.planning.definition import function_hashes, ir_hash
    from mutatenn_passes.kernel_ir import bind_target, lower_relax, tir_part
    from tests.campaign_inputs import tiny_classifier

    model = mn.load_model(tiny_classifier(tmp_path / "tiny.onnx"))
    with tvm.transform.PassContext(opt_level=3):
        kernels = bind_target(tir_part(lower_relax(model.mod, mn.get_profile("llvm-x86-64"))),
                              mn.get_profile("llvm-x86-64"))
    mutated = mn.mutation("store_mul_epsilon", sites=[0], epsilon=0.5)(kernels)
    known = function_hashes(kernels)
    assert ir_hash(mutated, known) == ir_hash(mutated) != ir_hash(kernels)
    assert ir_hash(kernels, known) == ir_hash(kernels)
    other = mn.mutation("store_mul_epsilon", sites=[1], epsilon=0.5)(kernels)
    assert ir_hash(other, known) not in (ir_hash(mutated), ir_hash(kernels))


def test_mutant_keys_follow_their_definition(tmp_path):
    base = tiny_campaign(tmp_path, operators='use = ["relu_to_sigmoid", "add_to_subtract"]\n'
                                             'sites = [0]')
    keys1 = {(t.operator, tuple(t.site_indices)): t.key for t in make_plan(
        load_config(base)).mutants()}
    # changing one operator's sites keeps the other operator's keys
    text = base.read_text() + "[operators.add_to_subtract]\nsites = [1]\n"
    base.write_text(text)
    keys2 = {(t.operator, tuple(t.site_indices)): t.key for t in make_plan(
        load_config(base)).mutants()}
    assert keys2[("relu_to_sigmoid", (0,))] == keys1[("relu_to_sigmoid", (0,))]
    assert ("add_to_subtract", (1,)) in keys2 and ("add_to_subtract", (0,)) not in keys2
    # "together" makes one mutant over the whole range
    base.write_text(text.replace("sites = [1]", "mode = \"together\"\nsites = {start = 0, "
                                                "stop = 3}"))
    adds = [t for t in make_plan(load_config(base)).mutants() if t.operator == "add_to_subtract"]
    assert len(adds) == 1 and adds[0].site_indices == [0, 1, 2]


def _outputs(top1s, classes=10, seed=0):
    import numpy as np

    from mutatenn_passes.artifact import top_k

    rng = np.random.default_rng(seed)
    rows = []
    for i, c in enumerate(top1s):
        v = rng.uniform(0, 0.5, classes).astype(np.float32)
        v[c] = 1.0
        rows.append({"image": f"img{i}", "classes": top_k(v, 5),
                     "scores": [float(v[k]) for k in top_k(v, 5)], "vector": v})
    return rows


def test_analysis_metrics_degenerate_and_statistical_kill(tmp_path):
    from mutatenn_passes.campaign.scoring.analysis import read_image_labels
    from mutatenn_passes.campaign.scoring.comparison import compare, statistical_kill

    original = _outputs([1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
    same = compare(_outputs([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]), original)
    assert same["top1_disagreement"] == 0 and not same["killed"] and same["rbo"] == 1
    assert same["max_abs_diff"] == 0 and same["kendall_tau"] == 1 and not same["degenerate"]
    collapsed = _outputs([4] * 10, seed=1)  # every image gets class 4: degenerate
    m = compare(collapsed, original)
    assert m["degenerate"] and m["killed"] and m["top1_disagreement"] == 0.9
    assert m["max_abs_diff"] > 0 and m["top1_differs"].count(True) == 9
    # no labels: the original's top-1 is the reference; 9 of 10 differ -> significant
    st = statistical_kill(collapsed, original, {})
    assert st["reference"] == "original top-1" and st["stat_killed"]
    assert st["p_value"] < 0.001 and st["original_agreement"] == 1
    one_off = _outputs([1, 2, 3, 4, 5, 6, 7, 8, 9, 5], seed=2)
    st = statistical_kill(one_off, original, {})
    assert compare(one_off, original)["killed"] and not st["stat_killed"]  # 1 of 10
    # with reference labels (name,index or name,label lines)
    labels = tmp_path / "labels.csv"
    labels.write_text("# image,class\nimg0,1\nimg1.png,two\nimg2,3\n")
    ref = read_image_labels(str(labels), ["zero", "one", "two"])
    assert ref == {"img0": 1, "img1": 2, "img2": 3}
    st = statistical_kill(collapsed, original, ref)
    assert st["reference"] == "image labels" and st["reference_images"] == 3
    assert st["original_agreement"] == 1 and st["mutant_agreement"] == 0
    # an already degenerate original makes no mutant degenerate
    assert not compare(collapsed, _outputs([4] * 10, seed=3))["degenerate"]
