"""Campaigns from Python, notebooks and CI, on a tiny ONNX model: `mutatenn run`'s exit codes
(0, 2, 3), the JUnit file parsed back, the ignore list, `run_campaign` / `open_campaign` and
`CampaignResult`, and the notebook example in docs/python-and-ci.md run as it stands.

One real campaign of four builds (the original and three mutants) serves most tests: one
mutant is killed, one survives, one survives but is ignored, one is not applicable."""

import contextlib
import io
import json
import re
import sqlite3
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.campaign.api import load_campaign
from mutatenn_passes.campaign.config.campaign_file import config_from_dict, parse_config
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.cli import main
from mutatenn_passes.errors import ConfigError, MissingDependencyError, MutateNNError
from tests.conftest import missing

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-and-ci.md"


def _site_id(operator: str, index: int, model_path: Path) -> str:
    return mn.find_sites(operator, mn.load_model(model_path).mod)[index].id


def _operators(folder: Path) -> tuple[str, dict]:
    """The [operators] body: exp_before_conv2d_dense at site 2 (the dense layer's input; it
    flips the top-1 of two of the three images), relu_to_sigmoid and add_to_subtract at site 0
    (both survive; add_to_subtract is ignored), sigmoid_to_relu (no site), and an ignore entry
    for a site that does not exist."""
    ids = {op: _site_id(op, i, folder / "tiny.onnx")
           for op, i in (("exp_before_conv2d_dense", 2), ("relu_to_sigmoid", 0),
                         ("add_to_subtract", 0))}
    body = f"""use = ["exp_before_conv2d_dense", "relu_to_sigmoid", "add_to_subtract",
       "sigmoid_to_relu"]
sites = [0]
ignore = [
  {{id = "add_to_subtract:{ids['add_to_subtract']}", reason = "accepted survivor"}},
  {{id = "relu_to_sigmoid:no/such/site", reason = "a site that is gone"}},
]
[operators.exp_before_conv2d_dense]
sites = [2]
"""
    return body, ids


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """The campaign run by `mutatenn run --fail-under 0.9 --junit FILE` while the file says
    ``fail_under = 0.5`` (the flag wins): the exit code and what it printed."""
    folder = tmp_path_factory.mktemp("gate")
    tiny_campaign(folder)  # writes the model and images first
    body, ids = _operators(folder)
    path = tiny_campaign(folder, name="gate", operators=body)
    path.write_text(path.read_text().replace("seed = 0", "seed = 0\nfail_under = 0.5"))
    junit = folder / "ci" / "junit.xml"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(path), "--fail-under", "0.9", "--junit", str(junit), "-q"])
    return {"path": path, "folder": folder, "out": folder / "out", "code": code,
            "stdout": out.getvalue(), "stderr": err.getvalue(), "junit": junit, "ids": ids}


def _statuses(result: dict) -> dict:
    return {m["operator"]: (m["status"], m["killed"], m["ignored"]) for m in result["mutants"]}


def test_below_the_threshold_exits_3_with_one_line_after_writing_every_report(gate):
    assert gate["code"] == 3
    lines = [line for line in gate["stderr"].splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("fail:")] == [
        "fail: mutation score 0.5 (1 killed of 2) is below the threshold 0.9"]
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: ignore entry 'relu_to_sigmoid:no/such/site' matches no mutant of this "
        "campaign (a mutant is ignored when every site it rewrites is listed)"]
    assert len(lines) == 2
    assert gate["stdout"].count("mutation score by category") == 1  # -q: the summary, once
    out = gate["out"]
    for name in ("results.json", "mutants.csv", "summary.csv", "cross_target.csv",
                 "report.html"):
        assert (out / name).stat().st_size > 0
    result = json.loads((out / "results.json").read_text())
    assert _statuses(result) == {
        "exp_before_conv2d_dense": ("ok", True, False),
        "relu_to_sigmoid": ("ok", False, False),
        "add_to_subtract": ("ok", False, True),
        "sigmoid_to_relu": ("not_applicable", False, False)}
    html = (out / "report.html").read_text()
    assert "class='gate-failed'" in html and "0.9" in html and "exits with code 3" in html


def test_junit_file_has_one_test_case_per_mutant(gate):
    suite = ET.parse(gate["junit"]).getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    assert suite.get("skipped") == "2" and suite.get("errors") == "0"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["mutation_score"] == "0.5" and properties["fail_under"] == "0.9"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    ids = gate["ids"]
    assert sorted(cases) == sorted([f"exp_before_conv2d_dense[{ids['exp_before_conv2d_dense']}]",
                                    f"relu_to_sigmoid[{ids['relu_to_sigmoid']}]",
                                    f"add_to_subtract[{ids['add_to_subtract']}]",
                                    "sigmoid_to_relu[no site]"])
    outcome = {name.split("[")[0]: [(child.tag, child.get("message")) for child in case]
               for name, case in cases.items()}
    assert outcome["exp_before_conv2d_dense"] == []  # killed: passed
    [(tag, message)] = outcome["relu_to_sigmoid"]
    assert tag == "failure" and message.startswith("survived")
    assert "3 image(s)" in cases[f"relu_to_sigmoid[{ids['relu_to_sigmoid']}]"] \
        .find("failure").text
    assert outcome["add_to_subtract"] == [("skipped", "ignored: accepted survivor")]
    [(tag, message)] = outcome["sigmoid_to_relu"]
    assert tag == "skipped" and message.startswith("not_applicable")
    for case in cases.values():
        assert case.get("classname") == "tiny.llvm-x86-64"


def test_ignored_mutant_is_reported_with_its_reason_and_left_out_of_the_score(gate):
    out = gate["out"]
    result = json.loads((out / "results.json").read_text())
    overall = result["summary"]["overall"]
    # 4 mutants - 1 not applicable - 1 ignored: killed 1 of 2
    assert overall["ignored"] == 1 and overall["denominator"] == 2
    assert overall["killed"] == 1 and overall["survived"] == 1
    assert overall["mutation_score"] == 0.5
    assert result["summary"]["operator"]["add_to_subtract"]["mutation_score"] is None
    assert [(e["id"].split(":")[0], e["matched"]) for e in result["ignore"]] == [
        ("add_to_subtract", 1), ("relu_to_sigmoid", 0)]
    import csv

    rows = {r["operator"]: r for r in csv.DictReader(open(out / "mutants.csv"))}
    assert rows["add_to_subtract"]["ignored"] == "1"
    assert rows["add_to_subtract"]["ignore_reason"] == "accepted survivor"
    assert rows["relu_to_sigmoid"]["ignored"] == "0"
    summary = next(r for r in csv.DictReader(open(out / "summary.csv"))
                   if r["group_by"] == "overall")
    assert summary["ignored"] == "1"
    html = (out / "report.html").read_text()
    assert "id='ignored'" in html and "accepted survivor" in html
    # the mutants table comes from report-data.js; an ignored mutant's status cell carries
    # the reason (report.js renders it as an "ignored" tag)
    data = (out / "report_files" / "report-data.js").read_text()
    rows = json.loads(data.removeprefix("window.MUTATENN_DATA = ").rstrip().rstrip(";"))
    status = [c["key"] for c in rows["mutants"]["columns"]].index("status")
    reasons = {row[-1]: row[status][4] for row in rows["mutants"]["rows"]}
    assert sorted(r for r in reasons.values() if r) == ["accepted survivor"]
    assert "warning: ignore entry &#39;relu_to_sigmoid:no/such/site&#39; matches no mutant" in html
    key = next(m["key"] for m in result["mutants"] if m["operator"] == "add_to_subtract")
    page = (out / "report_files" / "mutants" / f"{key}.html").read_text()
    assert "accepted survivor (left out of the scores)" in page


def test_python_api_on_the_same_campaign(gate, monkeypatch, tmp_path):
    folder = gate["folder"]
    body, _ = _operators(folder)
    import tomllib

    # The campaign as a dict (paths as Path objects), overrides as keywords: the same mutants,
    # so the run resumes and builds nothing.
    campaign = {"campaign": {"name": "gate", "targets": ["llvm-x86-64"]},
                "models": [{"path": folder / "tiny.onnx"}],
                "images": {"paths": [folder / "images"]},
                "operators": tomllib.loads("[operators]\n" + body)["operators"]}
    result = mn.run_campaign(campaign, output=gate["out"], workers=1, quiet=True)
    assert isinstance(result, mn.CampaignResult)
    assert result.stats.built == 0 and result.stats.skipped == result.stats.total == 4
    assert result.state == "finished" and result.score == 0.5 and result.fail_under is None
    assert result.threshold_failure() is None
    assert result.threshold_failure(0.9) == \
        "mutation score 0.5 (1 killed of 2) is below the threshold 0.9"
    assert len(result.warnings) == 1 and "no/such/site" in result.warnings[0]
    mutants = {m["operator"]: m for m in result.mutants}
    assert {op: (m["status"], m["killed"], m["ignored"]) for op, m in mutants.items()} == \
        _statuses(result.analysis)
    killed, survived = mutants["exp_before_conv2d_dense"], mutants["relu_to_sigmoid"]
    assert killed["top1_disagreement"] == pytest.approx(2 / 3)
    assert killed["site_ids"] == [gate["ids"]["exp_before_conv2d_dense"]]
    assert "images" not in killed and "metrics" not in killed
    assert [s["group_by"] for s in result.summary][:1] == ["overall"]
    assert result.summary[0]["mutation_score"] == 0.5
    assert len(result.originals) == 1 and result.cross_target == []
    assert [e["matched"] for e in result.ignored] == [1, 0]

    # Predictions and outputs of a mutant against the original's
    original = result.originals[0]
    mine, theirs = result.predictions(killed), result.predictions(original["key"])
    assert [p["image"] for p in mine] == [p["image"] for p in theirs] == \
        ["img0", "img1", "img2"]
    assert sum(a["top1"] != b["top1"] for a, b in zip(mine, theirs)) == 2
    assert [p["classes"] for p in mine] == [i["classes"] for i in result.mutant(killed)["images"]]
    vectors = result.outputs(killed)
    assert vectors.shape == (3, 10) and vectors.dtype == np.float32
    assert list(vectors.argmax(axis=1)) == [p["top1"] for p in mine]
    assert result.predictions(mutants["sigmoid_to_relu"]) == []
    diff = result.diff(survived)
    assert "R.nn.relu(" in diff and "R.sigmoid(" in diff and diff.startswith("---")
    assert result.diff(original) == "" and result.diff(mutants["sigmoid_to_relu"]) == ""
    with pytest.raises(MutateNNError, match="no mutant or original with key 'nope'"):
        result.mutant("nope")

    # Read once: with the database gone, what was read is still there
    db = gate["out"] / "results.db"
    moved = tmp_path / "results.db"
    db.rename(moved)
    try:
        assert result.predictions(killed) == mine and result.diff(survived) == diff
        with pytest.raises(MutateNNError, match="no campaign database"):
            result.diff(killed)  # never read: needs the database
    finally:
        moved.rename(db)

    # DataFrames
    try:
        import pandas  # noqa: F401
    except ImportError:
        missing("pandas is not installed (pip install 'mutatenn[pandas]')")
    frame = result.to_pandas()
    assert len(frame) == 4 and {"operator", "status", "killed", "ignored", "ignore_reason",
                                "top1_disagreement", "site_ids"} <= set(frame.columns)
    assert frame.loc[frame["operator"] == "exp_before_conv2d_dense", "killed"].item()
    assert list(result.to_pandas("summary")["group_by"])[:1] == ["overall"]
    with pytest.raises(MutateNNError, match="unknown table 'bogus'"):
        result.to_pandas("bogus")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install pandas.*result\.mutants"):
        result.to_pandas()

    # open_campaign reads the same, runs nothing; JUnit from Python
    opened = mn.open_campaign(gate["out"])
    assert opened.stats is None and opened.mutants == result.mutants
    assert opened.summary == result.summary
    junit = ET.parse(opened.write_junit(tmp_path / "j.xml")).getroot()
    assert junit.get("tests") == "4" and junit.get("failures") == "1"
    with pytest.raises(MutateNNError, match="no campaign database"):
        mn.open_campaign(tmp_path / "nothing-here")


def _finished(out: Path) -> dict:
    with contextlib.closing(sqlite3.connect(out / "results.db")) as db:
        return dict(db.execute("SELECT key, finished_at FROM results"))


def test_threshold_met_exits_0_and_the_file_threshold_applies_without_the_flag(gate, capsys):
    before = _finished(gate["out"])
    # no flag: the file's fail_under = 0.5 holds, and 0.5 is not below 0.5
    assert main(["run", str(gate["path"]), "-q"]) == 0
    assert "fail:" not in capsys.readouterr().err
    assert _finished(gate["out"]) == before  # resumed: nothing was built or run again
    html = (gate["out"] / "report.html").read_text()
    assert "class='gate-met'" in html and "fail_under = 0.5" in html


def test_bad_input_exits_2_with_one_line_and_runs_nothing(tmp_path, capsys):
    path = tiny_campaign(tmp_path)
    for flags, message in (
            (["--fail-under", "1.5"],
             "--fail-under: fail_under must be a mutation score between 0 and 1, not 1.5"),
            (["--targets", "llvm-x86-64,no-such-target"],
             "--targets: unknown target 'no-such-target'"),
            (["-j", "0"], "--workers: workers must be an integer >= 1, not 0")):
        assert main(["run", str(path), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    text = path.read_text()
    path.write_text(text.replace('use = ["relu_to_sigmoid"]', 'use = ["relu_to_sigmoid"]\n'
                                 'ignore = ["relu_to_sigmoid:main/lv7"]'))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "campaign.toml:17: ignore entry 'relu_to_sigmoid:main/lv7' must be a table" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


IGNORE_INLINE = """[operators]
use = ["relu_to_sigmoid"]
ignore = [
  {id = "relu_to_sigmoid:main/lv7", reason = "known"},
  {id = "relu_to_sigmod:main/lv7", reason = "misspelt"},
  {id = "relu_to_sigmoid:main/lv7", reason = "twice"},
  {id = "relu_to_sigmoid:main/lv11"},
  {id = "no-site", reason = "r", extra = 1},
  "relu_to_sigmoid:main/lv12",
]
"""
IGNORE_TABLES = """[operators]
use = ["relu_to_sigmoid"]

[[operators.ignore]]
id = "relu_to_sigmoid:main/lv7"
reason = "known"

[[operators.ignore]]
id = "relu_to_sigmoid:main/lv11"
reason = ""
"""


def test_ignore_entries_are_checked_with_their_lines():
    with pytest.raises(ConfigError) as info:
        parse_config(IGNORE_INLINE, "c.toml")
    message = str(info.value)
    found = [(int(n), text) for n, text in re.findall(r"c\.toml:(\d+): (.*)", message)]
    expected = [(5, "unknown mutation operator 'relu_to_sigmod' (did you mean "
                    "'relu_to_sigmoid'?)"),
                (6, "ignore entry 'relu_to_sigmoid:main/lv7' is listed twice"),
                (7, "ignore entry lacks reason"),
                (8, "unknown key 'extra' in an ignore entry"),
                (8, 'id must be "<operator>:<site id>"'),
                (9, "ignore entry 'relu_to_sigmoid:main/lv12' must be a table")]
    assert len(found) == len(expected), message
    for (line, text), (want_line, want) in zip(found, expected):
        assert line == want_line and want in text, (line, text)
    with pytest.raises(ConfigError, match=r"^c\.toml:10: reason must be a non-empty string"):
        parse_config(IGNORE_TABLES, "c.toml")
    ok = parse_config(IGNORE_TABLES.replace('reason = ""', 'reason = " accepted "'), "c.toml")
    assert [e.as_dict() for e in ok.ignore] == [
        {"id": "relu_to_sigmoid:main/lv7", "reason": "known"},
        {"id": "relu_to_sigmoid:main/lv11", "reason": "accepted"}]
    assert ok.as_dict()["ignore"] == [e.as_dict() for e in ok.ignore]


def test_dict_text_and_override_problems_name_where_they_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        config_from_dict({"campaign": {"workers": 0, "targets": ["llvm-x86-64", "nope"]},
                          "models": [{"path": Path("missing.onnx")}],
                          "operators": {"use": ["relu_to_sigmoid"],
                                        "ignore": [{"id": "relu_to_sigmoid:x"}]}})
    lines = str(info.value).splitlines()
    assert lines[0] == "<dict>: 4 problem(s) in the campaign"
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "campaign.workers", "campaign.targets", "models[0].path", "operators.ignore[0]"]
    with pytest.raises(ConfigError, match=r"^<dict>: campaign\.workers: workers must be an "
                                          r"integer >= 1, not 0$"):
        mn.run_campaign({"campaign": {"workers": 0}})
    with pytest.raises(ConfigError, match=r"^<string>:3: timeout must be a positive number"):
        mn.run_campaign('[campaign]\nname = "x"\ntimeout = -1\n')
    path = tiny_campaign(tmp_path)
    with pytest.raises(ConfigError, match=r"^override workers: workers must be an integer"):
        mn.run_campaign(path, workers=0)
    with pytest.raises(ConfigError, match=r"override wrokers: unknown key 'wrokers' in "
                                          r"\[campaign\] \(did you mean 'workers'\?\)"):
        mn.run_campaign(str(path), wrokers=1)
    with pytest.raises(ConfigError, match="a campaign is a file path, TOML text, a dict or "
                                          "None, not int"):
        mn.run_campaign(42)
    with pytest.raises(ConfigError, match="no such campaign file"):
        mn.run_campaign("no-such-campaign.toml")
    # an override's relative output is relative to the current folder, the file's to its own
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_campaign(path, overrides={"output": "here", "workers": None})
    assert config.output == elsewhere / "here" and config.workers == 2
    assert load_campaign(path).output == tmp_path / "out"
    assert load_campaign(config) is config  # already validated: taken as it is
    with pytest.raises(ConfigError, match="a CampaignConfig is already validated"):
        mn.run_campaign(config, workers=1)


def test_the_notebook_example_in_the_docs_runs(tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/python-and-ci.md after "A notebook, cell by cell", run in
    order in one namespace, in an empty folder, as a notebook would."""
    text = DOC.read_text(encoding="utf-8").split("## A notebook, cell by cell", 1)[1]
    text = text.split("\n## ", 1)[0]
    cells = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(cells) == 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell, str(DOC), "exec"), namespace)
    shown = capsys.readouterr()
    assert "mutatenn campaign: 100%" in shown.err and "3/3 [" in shown.err  # a tqdm bar
    result, again = namespace["result"], namespace["again"]
    assert again.state == "finished" and again.mutants == result.mutants
    assert len(result.mutants) == 2 and all(m["status"] == "ok" for m in result.mutants)
    assert "R.sigmoid(" in shown.out and "original top-1" in shown.out
    assert (tmp_path / "notebook-campaign" / "report.html").exists()
