"""Honest campaign results and inputs checked before any work (issue #16, campaign side).

* Inputs: every image decoded, duplicate image names, a labels file that does not match the
  model's class count (refused unless ``label_offset``), and the ``[images] labels`` file
  read line by line — all reported at once with their lines, before anything is created.
* Fisher's exact test: the fewest images with which it can reach p < 0.05, worked out and
  checked by brute force.
* One real campaign over a tiny model and a model whose outputs ignore the input, stopped by
  Ctrl-C after its third result: the Ctrl-C line, the partial reports (pending counted apart,
  the score over finished mutants, "partial: N of M finished" everywhere), then resumed: the
  wall time of the last run and of both, the flagged model, the statistical test's minimum,
  and what report.html opens with.

Assertions read lines printed without wrapping (notes, errors) or files, never a table laid
out for the terminal's width.
"""

import csv
import json
import re
from math import comb
from pathlib import Path

import pytest

from mutatenn_passes.campaign.scoring import metrics
from mutatenn_passes.campaign.scoring.comparison import statistical_kill
from mutatenn_passes.campaign.running.progress import CampaignUI
from tests.campaign_inputs import tiny_classifier, write_images
from mutatenn_passes.cli import main

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]

INPUTS = """\
[campaign]
name = "inputs"
output = "out"
workers = 1
targets = ["llvm-x86-64"]

[[models]]
path = "tiny.onnx"
labels = "labels11.txt"
{offset}
[images]
paths = [
  "images",
  "more",
  "images/img0.png",
]
labels = "image_labels.csv"

[operators]
use = ["relu_to_sigmoid"]
"""

IMAGE_LABELS = """\
image,class
img0,3
img0.png,4
dog,1
img1,10
img2,kat
broken,dog
img2b
"""


def _problems(err: str) -> dict[tuple[str, int], list[str]]:
    """{(file, line): [messages]} of a multi-problem error."""
    found = {}
    for line in err.splitlines():
        m = re.match(r"\s+(campaign\.toml|image_labels\.csv):(\d+): (.*)$", line)
        if m:
            found.setdefault((m.group(1), int(m.group(2))), []).append(m.group(3))
    return found


def test_inputs_are_checked_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny_classifier("tiny.onnx")
    write_images("images", 3)
    write_images("more", 2)  # more/img1.png has the name of images/img1.png
    (Path("more") / "img0.png").unlink()
    Path("images/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    Path("images/notes.txt").write_text("not an image")
    Path("labels11.txt").write_text("\n".join(["background"] + CLASSES) + "\n")
    Path("image_labels.csv").write_text(IMAGE_LABELS)
    Path("campaign.toml").write_text(INPUTS.format(offset=""))

    # Every problem at once, each at its line; nothing is created, nothing runs.
    for args in (["run", "campaign.toml", "-q"], ["run", "--check", "campaign.toml"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert not Path("out").exists()
        problems = _problems(err)
        expected = {
            ("campaign.toml", 9): "labels file labels11.txt has 11 lines for the model's 10 "
                                  "classes",
            ("campaign.toml", 13): "images/broken.jpg: cannot decode image",
            ("campaign.toml", 14): "two images are named 'img1': images/img1.png and "
                                   "more/img1.png",
            ("campaign.toml", 15): "image images/img0.png is listed twice",
            ("image_labels.csv", 1): "unknown image 'image'",
            ("image_labels.csv", 3): "image 'img0.png' is listed twice (first on line 2)",
            ("image_labels.csv", 4): "unknown image 'dog'",
            ("image_labels.csv", 5): "class 10 is out of range: model 'tiny' has 10 classes",
            ("image_labels.csv", 6): "unknown class 'kat' for model 'tiny' (did you mean "
                                     "'cat'?)",
            ("image_labels.csv", 8): "'img2b' is not an `image_name,class` line",
        }
        for where, text in expected.items():
            assert any(text in m for m in problems.get(where, [])), (where, err)
        assert "label_offset = 1 if its first line names no class" in err
        assert "(a header line? start it with #)" in err
        assert ("image_labels.csv", 2) not in problems  # img0,3 is fine
        assert ("image_labels.csv", 7) not in problems  # an undecodable image keeps its name
        assert err.splitlines()[0].startswith("error: campaign.toml: ")

    # label_offset is checked like the other keys.
    Path("campaign.toml").write_text(INPUTS.format(offset='label_offset = "one"'))
    assert main(["run", "--check", "campaign.toml"]) == 2
    assert "campaign.toml:10: label_offset must be an integer" in capsys.readouterr().err

    # Fixed: the offset said, the undecodable image and duplicates gone, the labels file
    # clean. --check decodes and imports, says which folder entries it skipped, and writes
    # nothing.
    Path("images/broken.jpg").unlink()
    text = INPUTS.format(offset="label_offset = 1").replace('  "more",\n', "") \
        .replace('  "images/img0.png",\n', "")
    Path("campaign.toml").write_text(text)
    Path("image_labels.csv").write_text("# image,class\nimg0,3\nimg1.png,cat\nimg2,9\n")
    assert main(["run", "--check", "campaign.toml"]) == 0
    out = capsys.readouterr().out
    assert "campaign.toml: valid; 1 operator(s), 1 model(s) imported, 3 image(s) decoded" \
        in out
    assert "note: skipped 1 folder entry that is not an image file (notes.txt)" in out
    assert not Path("out").exists()


def test_fisher_needs_four_images_to_reach_significance():
    def smallest_p(n: int) -> float:  # over every table of two agreement counts out of n
        return min(metrics.fisher_exact([[a, n - a], [b, n - b]])
                   for a in range(n + 1) for b in range(n + 1))

    for n in range(1, 7):
        assert smallest_p(n) == pytest.approx(2 / comb(2 * n, n))
    assert smallest_p(3) >= 0.05 > smallest_p(4)
    assert metrics.fisher_min_images(0.05) == 4
    assert metrics.fisher_min_images(0.01) == 5
    # the analysis's test on 4 and 3 images where the mutant changes every top-1
    from tests.test_campaign import _outputs

    for n, killed in ((4, True), (3, False)):
        original = _outputs(list(range(n)))
        mutant = _outputs([(c + 1) % 10 for c in range(n)], seed=1)
        assert statistical_kill(mutant, original, {})["stat_killed"] is killed


CAMPAIGN = """\
[campaign]
name = "honest"
output = "out"
workers = 2
timeout = 120
targets = ["llvm-x86-64"]

[[models]]
path = "tiny.onnx"
labels = "labels.txt"
[[models]]
path = "constant.onnx"
name = "constant"

[images]
paths = ["images"]
labels = "image_labels.csv"

[operators]
use = ["relu_to_sigmoid", "exp_before_conv2d_dense", "add_to_subtract", "sigmoid_to_relu"]
sites = [0]
[operators.exp_before_conv2d_dense]
sites = [2]
"""


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The campaign stopped by Ctrl-C after its third result (as the terminal display gets
    it), then `mutatenn report` on what it left."""
    folder = tmp_path_factory.mktemp("honest")
    tiny_classifier(folder / "tiny.onnx")
    tiny_classifier(folder / "constant.onnx", seed=1, ignores_input=True)
    write_images(folder / "images", 4)
    (folder / "images" / "README.txt").write_text("where the images come from")
    (folder / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    (folder / "image_labels.csv").write_text("img0,3\nimg1,4\nimg2,5\n")  # 3 of 4 images
    path = folder / "campaign.toml"
    path.write_text(CAMPAIGN)
    calls = []

    def result(self, task, status, error, stats):
        calls.append(task.label)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CampaignUI, "result", result)
        stop = _run(["run", str(path), "-q"])
    report = _run(["report", str(folder / "out")])
    return {"folder": folder, "path": path, "out": folder / "out", "stop": stop,
            "report": report,
            "json": json.loads((folder / "out" / "results.json").read_text()),
            "html": (folder / "out" / "report.html").read_text(),
            "summary": list(csv.DictReader(open(folder / "out" / "summary.csv")))}


def _status_cells(out: Path) -> list[list]:
    """The status cell of every row of report.html's mutants table, from the data file the
    page loads: [status, error, detail, duplicate?, ignore reason, survived?]."""
    data = (out / "report_files" / "report-data.js").read_text()
    table = json.loads(data.removeprefix("window.MUTATENN_DATA = ").rstrip().rstrip(";"))
    at = [c["key"] for c in table["mutants"]["columns"]].index("status")
    return [row[at] for row in table["mutants"]["rows"]]


def _run(args):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def test_ctrl_c_says_how_many_results_were_saved(stopped):
    assert stopped["stop"]["code"] == 130
    r = stopped["json"]
    statuses = [m["status"] for m in r["mutants"]]
    finished = sum(s != "pending" for s in statuses)
    assert len(statuses) == 8 and 2 < finished < 8  # two not_applicable, 1+ built
    assert f"interrupted: {finished} of 8 mutant results saved in {stopped['out']}; rerun " \
           "to resume" in stopped["stop"]["err"]
    assert r["campaign"]["state"] == "interrupted"


def test_a_partial_campaign_is_reported_as_partial_everywhere(stopped):
    r, html = stopped["json"], stopped["html"]
    overall = r["summary"]["overall"]
    statuses = [m["status"] for m in r["mutants"]]
    pending = statuses.count("pending")
    partial = f"partial: {8 - pending} of 8 finished"
    # the score counts finished mutants only
    assert overall["pending"] == pending > 0
    assert overall["denominator"] == sum(s not in ("pending", "not_applicable", "equivalent")
                                         for s in statuses)
    assert overall["mutation_score"] == (overall["killed"] / overall["denominator"]
                                         if overall["denominator"] else None)
    # results.json, the terminal summary of `mutatenn report`, summary.csv, report.html
    assert r["campaign"]["partial"] == partial
    assert stopped["report"]["code"] == 0
    assert f"note: {partial}: the {pending} pending mutant(s) are left out of the scores; " \
           "rerun the campaign to resume" in stopped["report"]["out"]
    row = next(row for row in stopped["summary"] if row["group_by"] == "overall")
    assert int(row["pending"]) == pending and partial in row["note"]
    assert f"<span id='partial' class='partial'>{partial}</span>" in html
    assert f"<b>{pending}</b> pending" in html and "mutation score (finished mutants)" in html
    statuses_shown = [cells[0] for cells in _status_cells(stopped["out"])]
    assert statuses_shown.count("pending") == pending


def test_resume_reports_both_wall_times_and_the_honest_flags(stopped):
    path = stopped["path"]
    # Resume with every image as the reference (no labels file): 4 images, enough for
    # Fisher's test; the stopped run's 3 labelled images were not.
    assert "3 for tiny" in stopped["json"]["campaign"]["statistics"]["note"]
    assert stopped["json"]["summary"]["overall"]["stat_killed"] is None
    assert 'labels = "image_labels.csv"' in path.read_text()
    path.write_text(path.read_text().replace('labels = "image_labels.csv"\n', ""))
    done = _run(["run", str(path), "-q"])
    assert done["code"] == 0, done["err"]
    out = stopped["out"]
    r = json.loads((out / "results.json").read_text())
    html = (out / "report.html").read_text()
    campaign = r["campaign"]
    assert campaign["state"] == "finished" and campaign["partial"] == ""
    assert "pending" not in [m["status"] for m in r["mutants"]]

    # wall time: the last run and both runs
    wall = campaign["wall_time"]
    assert wall["runs"] == 2 and wall["total_s"] > wall["last_run_s"] > 0
    both = f"{wall['last_run_s']:.0f} s (last run; {wall['total_s']:.0f} s over 2 runs)"
    assert f"results in {both} in {out}" in done["out"]
    assert f"<b>{both}</b> wall time" in html

    # the model whose outputs ignore the input is flagged in JSON, terminal and HTML
    flagged = {o["model"]: o["ignores_input"] for o in r["originals"]}
    assert flagged["tiny"] == "" and "identical scores" in flagged["constant"]
    line = f"model constant on llvm-x86-64: {flagged['constant']}; its mutants' kills and " \
           "survivals say nothing about the compiler"
    assert line in campaign["notes"] and f"note: {line}" in done["out"]
    assert html.count("class='warning ignores-input'") == 2  # what was tested, originals

    # Fisher's test on 4 images is assessed; nothing says otherwise
    assert campaign["statistics"]["reference_images"] == {"tiny": 4, "constant": 4}
    assert campaign["statistics"]["note"] == "" and "id='stat-note'" not in html
    assert r["summary"]["overall"]["stat_killed"] is not None
    assert all(m["stat_killed"] is not None for m in r["mutants"] if m["status"] == "ok")

    # report.html opens with what was tested and says what its chips count
    tested = html[html.index("id='tested'"):html.index("Top-1 disagreement")]
    assert "<td>tiny</td>" in tested and "<td>constant</td>" in tested
    assert tested.count("<td>from the file</td>") == 2
    assert "Images (4): img0, img1, img2, img3." in tested
    skipped = "skipped 1 folder entry that is not an image file (README.txt)"
    assert "Skipped (not images): " in tested and f"note: {skipped}" in done["out"]
    assert campaign["images_skipped"] == [str(stopped["folder"] / "images" / "README.txt")]
    assert "<td>llvm-x86-64</td>" in tested and "tiled, vectorized and parallel" in tested
    assert "<code>exp_before_conv2d_dense</code>" in tested
    for term in ("killed", "survived", "equivalent", "not applicable"):
        assert f"<dt>{term}</dt><dd>" in html
    # the original's top-1 classes by label
    originals = html[html.index("id='originals'"):]
    top1 = next(o for o in r["originals"] if o["model"] == "tiny")["top1"]
    assert f"img0: {top1[0]} <i>{CLASSES[top1[0]]}</i>" in originals
    # survivors are marked as such
    survivors = [m for m in r["mutants"] if m["status"] == "ok" and not m["killed"]]
    assert survivors
    survived = [cells[5] for cells in _status_cells(out)]
    assert survived.count(True) == len(survivors)


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_terminal_summary_shows_every_score_at_any_width(stopped, monkeypatch, width):
    """Too narrow for the table, one line per category; never a column cut off."""
    import io

    from rich.console import Console

    from mutatenn_passes.campaign.running import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(width=width, file=screen))
    progress.print_summary(stopped["json"], "out")
    text = screen.getvalue()
    lines = text.splitlines()
    summary = stopped["json"]["summary"]
    for name, g in [*summary["category"].items(), ("all", summary["overall"])]:
        score = "n/a" if g["mutation_score"] is None else f"{g['mutation_score']:.2f}"
        # every category has its score: a table row ending with it, or a line naming it
        assert any(f"  {name}: score {score};" in line or (
            name.split()[0] in line and line.rstrip(" │").endswith(score))
            for line in lines), (width, text)
    assert ("┃ category" in text) == (width >= 100)
    table = [line for line in lines if "│" in line]
    assert all(len(line) <= width for line in table) and "…" not in text
