"""Real campaigns over a tiny ONNX model: reports, regeneration, headless Chromium, and a run
killed with SIGKILL mid-way that, rerun, ends with the results of an uninterrupted run."""

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign, model_spec
from mutatenn_passes.campaign.running.progress import (CampaignUI, NotebookProgress, make_progress,
                                               reference_lines)
from mutatenn_passes.campaign.running.reference_check import check_references
from mutatenn_passes.campaign.scoring.report import regenerate
from mutatenn_passes.campaign.scoring.store import Store, vector_digest
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.cli import main
from tests.conftest import missing

#: Where the mutatenn under test lives (the installed one in CI, the checkout in development).
ROOT = Path(mn.__file__).resolve().parents[1]

# Deterministic mutants only (graph level, and a kernel store rewrite that stays in bounds),
# so two runs must agree bit for bit; plus one equivalent and one not-applicable mutant.
OPERATORS = """use = ["relu_to_sigmoid", "add_to_subtract", "exp_before_conv2d_dense",
       "store_mul_epsilon", "transpose_dense_input", "sigmoid_to_relu"]
sites = [0]
[operators.relu_to_sigmoid]
sites = [0, 1]
[operators.store_mul_epsilon]
params = {epsilon = 0.5}
"""


def _comparable(result: dict) -> dict:
    """results.json without timings, worker ids and paths."""
    def clean_images(images):
        return [{k: v for k, v in i.items() if k != "latency_ms"} for i in images]

    mutants = [{k: (clean_images(v) if k == "images" else v) for k, v in m.items()
                if k not in ("build_s", "load_s", "run_s", "artifact", "error", "build_mode")}
               | {"error_head": (m["error"] or "")[:40]} for m in result["mutants"]]
    originals = [{k: (clean_images(v) if k == "images" else v) for k, v in o.items()
                  if k not in ("build_s", "run_s")} for o in result["originals"]]
    return {"mutants": mutants, "originals": originals, "summary": result["summary"]}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The campaign run from Python without a terminal: its progress is a tqdm bar."""
    folder = tmp_path_factory.mktemp("baseline")
    config = load_config(tiny_campaign(folder, operators=OPERATORS))
    shown = io.StringIO()
    outcome = execute_campaign(config, progress=NotebookProgress(file=shown))
    return config, outcome, shown.getvalue()


def test_uninterrupted_run_statuses_and_analysis(baseline):
    config, outcome, progress = baseline
    assert isinstance(make_progress(), NotebookProgress)  # pytest captures stdout
    assert "mutatenn campaign: 100%" in progress and "6/6 [" in progress  # 6 builds
    result = outcome["analysis"]
    statuses = {(m["operator"], tuple(m["site_indices"])): m["status"]
                for m in result["mutants"]}
    assert statuses == {
        ("relu_to_sigmoid", (0,)): "ok", ("relu_to_sigmoid", (1,)): "ok",
        ("add_to_subtract", (0,)): "ok", ("exp_before_conv2d_dense", (0,)): "ok",
        ("store_mul_epsilon", (0,)): "ok", ("transpose_dense_input", (0,)): "equivalent",
        ("sigmoid_to_relu", ()): "not_applicable"}, \
        [(m["operator"], m["status"], m["error"][:300]) for m in result["mutants"]]
    orig = result["originals"][0]
    assert orig["status"] == "ok" and len(orig["images"]) == 3
    for m in result["mutants"]:
        if m["status"] != "ok":
            assert m["metrics"] is None and not m["killed"]
            continue
        met = m["metrics"]
        assert 0 <= met["top1_disagreement"] <= 1 and 0 <= met["rbo"] <= 1
        assert -1 <= met["kendall_tau"] <= 1 and 0 <= met["top5_overlap"] <= 1
        assert m["killed"] == (met["top1_disagreement"] > 0)
        assert m["p_value"] is not None and m["reference"] == "original top-1"
        assert len(m["images"]) == 3
        for image in m["images"]:
            assert len(image["classes"]) == 5 and len(image["digest"]) == 16
            assert image["latency_ms"] > 0
        assert met["max_abs_diff"] > 0  # every one of them changes the outputs
    overall = result["summary"]["overall"]
    assert overall["mutants"] == 7 and overall["denominator"] == 5
    assert overall["mutation_score"] == overall["killed"] / 5
    assert set(result["summary"]["category"]) >= {"Layer Node Replacement",
                                                  "Kernel Variables & Stores"}
    # the store holds the config, seeds and versions
    db = sqlite3.connect(config.output / "results.db")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert {"config", "config_text", "seed", "versions", "plan", "sampling"} <= set(meta)
    assert "tvm" in json.loads(meta["versions"])
    # a rerun resumes: nothing is rebuilt
    again = execute_campaign(config, progress=CampaignUI(quiet=True))
    assert again["stats"].skipped == again["stats"].total == 6
    assert again["stats"].built == 0
    assert _comparable(again["analysis"]) == _comparable(result)
    assert again["analysis"]["reference"] == result["reference"]


def test_the_original_agrees_with_onnx_runtime(baseline):
    """The unmutated build against ONNX Runtime on the very batch the workers ran."""
    config, outcome, _ = baseline
    result = outcome["analysis"]
    [ref] = result["reference"]
    assert (ref["model"], ref["target"]) == ("tiny", "llvm-x86-64")
    assert ref["runtime"].startswith("ONNX Runtime ") and ref["reason"] is None
    assert ref["agree"] is True and ref["top1_agree"] == ref["images"] == 3
    assert ref["top5_overlap_mean"] == 5.0 and ref["max_abs_diff"] < 1e-5
    assert ref["unit"] == "output units"
    assert ref["verdict"].startswith("TVM agrees with ONNX Runtime")
    # ONNX Runtime's top-1 per image is TVM's original's, image by image
    orig = result["originals"][0]["images"]
    assert [i["image"] for i in ref["per_image"]] == [i["image"] for i in orig]
    assert [i["reference_classes"][0] for i in ref["per_image"]] == \
        [i["classes"][0] for i in orig]
    # stored: a later look at the campaign finds nothing left to check
    store = Store(config.output)
    try:
        specs = [model_spec(config, 0)]
        assert check_references(store, specs, [None], config.images) == 0
    finally:
        store.close()


def test_reference_missing_failing_or_disagreeing_keeps_the_campaign(baseline, tmp_path,
                                                                    monkeypatch):
    """On a copy of the campaign: without onnxruntime, or with a reference run that raises,
    the reason is stored and reported; a rerun checks again; an original whose outputs
    changed (here: the first image's scores in reverse class order, as a miscompiled layout
    would give) is checked again and flagged as a possible compiler fault."""
    import mutatenn_passes.reference as reference

    config, outcome, _ = baseline
    copy = tmp_path / "copy"
    shutil.copytree(config.output, copy, ignore=shutil.ignore_patterns(".campaign.lock"))
    specs = [model_spec(config, 0)]
    store = Store(copy)
    try:
        store.db.execute("DELETE FROM reference_checks")
        with monkeypatch.context() as m:  # as if onnxruntime were not installed
            m.setitem(sys.modules, "onnxruntime", None)
            assert check_references(store, specs, [None], config.images) == 1
        [ref] = regenerate(copy)["reference"]
        assert ref["agree"] is None and "needs onnxruntime" in ref["reason"]
        assert ref["verdict"] == f"no reference: {ref['reason']}"
        assert "no reference: the ONNX reference needs onnxruntime" in \
            (copy / "report.html").read_text()
        assert any("no reference" in line for line in reference_lines([ref]))

        def broken(model, batch):
            raise RuntimeError("the runtime fell over\nand said more")

        with monkeypatch.context() as m:
            m.setitem(reference.RUNTIMES, "onnx", broken)
            assert check_references(store, specs, [None], config.images) == 1
        [ref] = regenerate(copy)["reference"]
        assert ref["reason"] == "the reference run failed: the runtime fell over"

        assert check_references(store, specs, [None], config.images) == 1  # retried
        [ref] = regenerate(copy)["reference"]
        assert ref["agree"] is True and ref["reason"] is None

        original = outcome["analysis"]["originals"][0]["key"]
        [(vector,)] = store.db.execute("SELECT vector FROM outputs WHERE key = ? AND "
                                       "idx = 0", (original,)).fetchall()
        flipped = np.frombuffer(vector, dtype=np.float32)[::-1].copy()
        store.db.execute("UPDATE outputs SET vector = ?, digest = ? WHERE key = ? AND idx = 0",
                         (flipped.tobytes(), vector_digest(flipped), original))
        assert regenerate(copy)["reference"][0]["reason"].startswith("not checked yet")
        assert check_references(store, specs, [None], config.images) == 1
    finally:
        store.close()
    [ref] = regenerate(copy)["reference"]
    assert ref["agree"] is False and (ref["top1_agree"], ref["images"]) == (2, 3)
    assert "possible compiler fault in the unmutated build" in ref["verdict"]
    html = (copy / "report.html").read_text()
    assert "reference-disagrees" in html and "TVM DISAGREES with ONNX Runtime" in html
    [line] = reference_lines([ref])
    assert line.startswith("[red]reference:[/] tiny on llvm-x86-64: TVM DISAGREES")


def test_reports_are_written_and_regenerated_from_the_database(baseline, tmp_path):
    config, _, _ = baseline
    out = config.output
    for name in ("results.json", "results.jsonl", "mutants.csv", "summary.csv", "report.html",
                 "report_files/report-data.js"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader(open(out / "mutants.csv")))
    assert len(rows) == 7 and {r["status"] for r in rows} >= {"ok", "equivalent"}
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["group_by"] for r in summary} == {"overall", "operator", "category", "model",
                                                "target"}
    html = (out / "report.html").read_text()
    assert "<svg" in html and "id='mutants'" in html and "class='hm'" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # offline
    # the reference runtime's verdict, above the originals
    assert html.index("id='reference-runtime'") < html.index("id='originals'")
    assert "TVM agrees with ONNX Runtime" in html and "reference-disagrees" not in html
    # results.jsonl: the mutants of results.json, one a line
    result = json.loads((out / "results.json").read_text())
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result["mutants"]
    assert result["reference"][0]["agree"] is True
    # each mutant has its own page beside the report (not inline), linked from its row of
    # the table's data (report-data.js, which the page loads)
    assert "<script src='report_files/report-data.js' defer></script>" in html
    data = (out / "report_files" / "report-data.js").read_text()
    assert data.startswith("window.MUTATENN_DATA = ")
    rows = json.loads(data.removeprefix("window.MUTATENN_DATA = ").rstrip().rstrip(";"))
    rows = rows["mutants"]["rows"]
    pages = sorted((out / "report_files" / "mutants").iterdir())
    assert [p.stem for p in pages] == sorted(m["key"] for m in result["mutants"])
    assert [r[-1] for r in rows] == [m["key"] for m in result["mutants"]]
    for m, row in zip(result["mutants"], rows):
        assert ["view", f"report_files/mutants/{m['key']}.html"] in row
        page = (out / "report_files" / "mutants" / f"{m['key']}.html").read_text()
        assert "href='../../report.html'" in page and "http://" not in page
        if m["metrics"]:  # which images flipped: one marked row per top-1 change
            assert page.count("class='flipped'") == sum(m["metrics"]["top1_differs"])
            assert page.count("<tr data-image=") + page.count("class='flipped'") == 3
        if m["operator"] == "relu_to_sigmoid":  # and the IR diff the mutant made
            assert "<span class='del'>-" in page and "R.nn.relu(" in page
            assert "<span class='add'>+" in page and "R.sigmoid(" in page
    assert "R.sigmoid" not in html  # diffs stay out of the main page
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".campaign.lock"))
    before = (copy / "results.json").read_text()
    page_names = sorted(p.name for p in (copy / "report_files" / "mutants").iterdir())
    for name in ("results.json", "results.jsonl", "mutants.csv", "summary.csv", "report.html"):
        (copy / name).unlink()
    shutil.rmtree(copy / "report_files")
    (copy / "report_files" / "mutants").mkdir(parents=True)
    (copy / "report_files" / "mutants" / "stale.html").write_text("a mutant no longer planned")
    assert main(["report", str(copy), "-q"]) == 0
    assert (copy / "results.json").read_text() == before  # the reference check included
    assert "TVM agrees with ONNX Runtime" in (copy / "report.html").read_text()
    assert (copy / "report.html").exists() and (copy / "mutants.csv").exists()
    assert sorted(p.name for p in (copy / "report_files" / "mutants").iterdir()) == page_names
    assert main(["report", str(tmp_path / "nothing-here")]) == 2


def test_report_in_headless_chromium(baseline, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")
    if not browser:
        missing("no Chromium installed (apt-get install -y chromium)")
    config, _, _ = baseline
    page = (config.output / "report.html").resolve()
    shot = tmp_path / "report.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(flags + ["--window-size=1400,1200", f"--screenshot={shot}",
                            page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    # The page's script sorts the mutants table on load when asked by the URL fragment.
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri() + "#sort=top1_disagreement:desc"],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-sorted="top1_disagreement:desc"' in dom
    import re

    table = dom[dom.index('id="mutants"'):]
    table = table[:table.index("</table>")]
    headers = re.findall(r"<th[^>]*data-col=\"([^\"]*)\"", table)
    column = headers.index("top1_disagreement")
    values = []
    for row in re.findall(r"<tr[^>]*data-key[^>]*>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td[^>]*data-v=\"([^\"]*)\"", row)
        assert len(cells) == len(headers) == 18  # every cell carries its sort value
        values.append(cells)
    disagreement = [float(v[column]) if v[column] else None for v in values]
    numbers = [d for d in disagreement if d is not None]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 5


def _finished_count(db_path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM results WHERE status NOT IN "
                              "('equivalent', 'not_applicable')").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_results(baseline, tmp_path):
    """Also checks that the baseline's builds (its mutants compiled together as schemata) and
    full builds (this run) give bit-identical results: the killed campaign builds every mutant
    in full."""
    _, outcome, _ = baseline
    path = tiny_campaign(tmp_path, operators=OPERATORS)
    path.write_text(path.read_text().replace("[campaign]", "[campaign]\nincremental = false"))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "mutatenn_passes", "run", str(path), "-q"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    workers = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid) or workers
            if _finished_count(out / "results.db") >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the campaign finished before it could be killed"
        done_before = _finished_count(out / "results.db")
        assert 2 <= done_before < 6
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Workers die with the campaign (they asked for PDEATHSIG), so none lingers.
    assert workers
    for _ in range(100):
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert json.loads(dict(sqlite3.connect(out / "results.db").execute(
        "SELECT key, value FROM meta"))["state"]) == "running"
    # The partial campaign reads as it stands: finished mutants with their results, the
    # others pending; the database still says running, but nobody holds the folder's lock,
    # so it reads interrupted.
    partial = mn.open_campaign(out)
    assert partial.state == "interrupted"
    statuses = {m["key"]: m["status"] for m in partial.mutants}
    pending = list(statuses.values()).count("pending")
    assert pending and partial.partial == f"partial: {7 - pending} of 7 finished"
    assert partial.notes[0].startswith(partial.partial) and "was killed" in partial.notes[0]
    for key, status in statuses.items():
        assert len(partial.predictions(key)) == (3 if status == "ok" else 0)
    resumed = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    wall = resumed["analysis"]["campaign"]["wall_time"]  # the killed run counts, up to its
    assert wall["runs"] == 2 and wall["killed_runs"] == 1  # last stored result
    assert wall["total_s"] > wall["last_run_s"] > 0
    stats = resumed["stats"]
    assert stats.skipped >= done_before and stats.built <= 6 - done_before
    assert _comparable(resumed["analysis"]) == _comparable(outcome["analysis"])
    modes = {m["build_mode"].split(" ")[0] for m in resumed["analysis"]["mutants"]
             if m["status"] == "ok"}
    assert modes == {"full"}
    modes = {m["build_mode"].split(" ")[0] for m in outcome["analysis"]["mutants"]
             if m["status"] == "ok"}
    # one group: its owner compiles it as a schema; a worker helping with it builds alone
    assert "schema" in modes and modes <= {"schema", "incremental"}
