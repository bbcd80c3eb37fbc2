"""The command line as a user meets it: tables that never cut the names users type (checked at
80 and 200 columns, whatever the terminal running the tests), every site listed by `mutants`,
bad target profiles reported once and skipped, unknown LLVM CPUs refused, mistyped flags
answered with the subcommand's usage, and defaults stated in every --help."""

from __future__ import annotations

import io
import json
import shutil

import onnx
import pytest
from rich.console import Console

import mutatenn_passes as mn
from mutatenn_passes import cli
from mutatenn_passes.cli import main
from mutatenn_passes.commands import operators as operators_cmd
from mutatenn_passes.commands import targets as targets_cmd

BOX = set("│┃┏┡├└┗┓┩┤┘┛━─┳╇┼┴╋")
WIDTHS = (80, 200)


def _render(monkeypatch, module, width: int, argv: list[str]) -> str:
    """Run a command with its table console forced to ``width`` columns; its output."""
    out = io.StringIO()
    monkeypatch.setattr(module, "console", Console(width=width, file=out, highlight=False))
    assert main(argv) == 0
    return out.getvalue()


def _assert_not_cropped(text: str, width: int) -> None:
    """Every table line fits and ends with its border: nothing was cut at the right."""
    for line in text.splitlines():
        assert len(line) <= width, line
        if line[:1] in BOX:
            assert line.rstrip()[-1] in BOX, line


def _column(text: str, index: int) -> str:
    """The words of one table column, top to bottom, with the wrapping undone."""
    cells = [line.split("│")[index + 1] for line in text.splitlines()
             if line.startswith("│")]
    return " ".join(" ".join(cells).split())


# --- tables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_operator_table_never_cuts_ids_or_category_words(monkeypatch, width):
    text = _render(monkeypatch, operators_cmd, width, ["operators"])
    _assert_not_cropped(text, width)
    assert "…" not in text
    cells = [part.strip() for line in text.splitlines() for part in line.split("│")]
    specs = mn.operators()
    for spec in specs:
        assert spec.id in cells, spec.id  # whole, alone in its cell
        for word in spec.category.split():
            assert word in text, (spec.category, word)
    if width >= 120:  # wide enough for every category on one line
        for spec in specs:
            assert spec.category in text


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, tiny_classifier):
    path = tmp_path_factory.mktemp("mutants") / "tiny.onnx"
    onnx.save(tiny_classifier(10), str(path))
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_mutants_lists_sites_with_their_kernel(monkeypatch, tiny_file, width, capsys):
    ops = "store_f32_to_i8,cond_lt_to_le,transpose_conv2d_dense_weight"
    argv = ["mutants", "--model", str(tiny_file), "--operators", ops]
    text = _render(monkeypatch, operators_cmd, width, argv)
    _assert_not_cropped(text, width)
    assert main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    sites = {r["operator"]: r["sites"] for r in found["operators"]}
    stores = len(sites["store_f32_to_i8"])
    assert stores > 3 and len(sites["cond_lt_to_le"]) == 2
    assert f"first 3 of {stores}; --all for every site" in _column(text, 4)
    for op_id in ops.split(","):
        assert op_id in text
    rows = [line for line in text.splitlines() if "store to" in line]
    assert len(rows) == 3 and all("conv2d" in row for row in rows)  # the kernel, every row

    every = _render(monkeypatch, operators_cmd, width, [*argv, "--all"])
    _assert_not_cropped(every, width)
    assert "first 3 of" not in every
    kernels = {s["function"] for s in sites["store_f32_to_i8"]}
    rows = [line for line in every.splitlines() if "store to" in line]
    assert len(rows) == stores
    assert {k for k in kernels if any(k in row.split("│")[4] for row in rows)} == kernels


# --- target profiles ------------------------------------------------------------------------

@pytest.fixture
def local_targets(tmp_path, monkeypatch):
    """A ./targets folder with two bad profiles and one that shadows a shipped profile."""
    monkeypatch.chdir(tmp_path)  # first: from the repository root, ./targets is the shipped one
    shipped = mn.get_profile("llvm-x86-64").path  # before the bad files: no warning yet
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / "broken.toml").write_text("name = 'broken'\n[target\n")
    (folder / "typo.toml").write_text("name = 'typo'\n[target]\nkind = 'llvm'\n"
                                      "mcpu = 'haswel'\n")
    shutil.copy(shipped, folder / "llvm-x86-64.toml")
    return {"folder": folder, "shipped": shipped}


def test_targets_reports_every_bad_profile_once_and_shadowing(local_targets, capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr()
    text = " ".join(out.out.split())
    assert text.count("bad profile, skipped:") == 2
    assert "broken.toml: malformed target profile" in text
    assert "typo.toml: LLVM knows no CPU named 'haswel'" in text and \
        "did you mean 'haswell'?" in text
    assert f"llvm-x86-64.toml shadows the profile 'llvm-x86-64' in " \
           f"{local_targets['shipped']}" in text
    assert "warning" not in out.err  # reported in the listing, not twice

    assert main(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["llvm-x86-64"]["shadows"] == local_targets["shipped"]
    assert rows["llvm-x86-64"]["path"] == str(local_targets["folder"] / "llvm-x86-64.toml")
    assert "malformed" in rows["broken"]["error"] and not rows["broken"]["can_build"]
    assert rows["c"]["error"] is None and rows["c"]["shadows"] is None


def test_a_bad_profile_fails_only_where_it_is_used(local_targets, capsys):
    assert main(["predict", "--target", "typo"]) == 2
    warning, error = capsys.readouterr().err.strip().splitlines()  # one line each
    assert warning.startswith("warning: skipping a bad target profile: ")
    assert "broken.toml: malformed" in warning
    assert error.startswith("error: ") and "typo.toml: LLVM knows no CPU named 'haswel'" in error

    with pytest.warns(mn.MutateNNWarning, match="typo.toml"):
        profile = mn.get_profile("c")  # another target still works, with a warning
    assert profile.name == "c"
    with pytest.raises(mn.TargetError, match="did you mean 'typo'"):
        mn.get_profile("typ")


def test_unknown_mcpu_is_refused_with_a_near_match(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[target]\nkind = 'cuda'\narch = 'sm_90'\n[target.host]\nkind = 'llvm'\n"
                   "mcpu = 'skylake-avx51'\n")
    with pytest.raises(mn.TargetError, match="no CPU named 'skylake-avx51' .* did you mean "
                                             "'skylake-avx512'"):
        mn.get_profile(bad)
    bad.write_text("[target]\nkind = 'llvm'\nmtriple = 'aarch64-linux-gnu'\n"
                   "mcpu = 'haswell'\n")  # an x86 CPU on an Arm triple
    with pytest.raises(mn.TargetError, match="no CPU named 'haswell' for aarch64-linux-gnu"):
        mn.get_profile(bad)
    bad.write_text("[target]\nkind = 'llvm'\nmtriple = 'aarch64-linux-gnu'\n"
                   "mcpu = 'cortex-a72'\n")
    assert mn.get_profile(bad).target["mcpu"] == "cortex-a72"


# --- flags and help -------------------------------------------------------------------------

def test_a_mistyped_flag_prints_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--lables", "x.txt"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mutatenn predict ")
    assert "unrecognized arguments: --lables (did you mean --labels?)" in err
    with pytest.raises(SystemExit):
        main(["mutants", "--operatrs", "paper"])
    assert capsys.readouterr().err.startswith("usage: mutatenn mutants ")


def test_every_help_states_its_defaults():
    for name, parser in cli.subcommand_parsers(cli.make_parser()).items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.nargs == 0 or action.required:  # flags: off unless given
                continue
            help_text = " ".join(parser._get_formatter()._expand_help(action).split())
            assert "default" in help_text, f"{name} {action.option_strings or action.dest}"
            assert help_text in text


def test_run_flags_say_what_applies_without_them():
    """`mutatenn run`'s flags override [campaign] keys: each says which, and what applies
    when the campaign file does not set it either."""
    run = cli.subcommand_parsers(cli.make_parser())["run"]
    text = " ".join(run.format_help().split())
    for key, shown in (("output", "./mutatenn-campaign)"), ("workers", "2)"),
                       ("timeout", "300;"), ("targets", "llvm-x86-64)"),
                       ("keep_artifacts", "off)"), ("prefix_reuse", "off)"),
                       ("fail_under", "no threshold)")):
        assert f"default, without the flag: the campaign file's [campaign] {key}, else " \
               f"{shown}" in text, key
    assert "else 300; the embedded default campaign says 120" in text


def test_prefix_reuse_flag_sets_the_campaign_key():
    from mutatenn_passes.campaign.commands import _overrides

    parse = cli.make_parser().parse_args
    assert _overrides(parse(["run", "--prefix-reuse"]))["prefix_reuse"] is True
    assert _overrides(parse(["run"]))["prefix_reuse"] is None  # the file's key applies
