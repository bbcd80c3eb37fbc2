"""The commands and flags not exercised elsewhere: `mutatenn operators`, `mutatenn mutants`,
`mutatenn run -o/-j/--timeout/--keep-artifacts`, and the output-folder lock, on a tiny ONNX
model (one real campaign of two builds)."""

import io
import json
import sqlite3
import subprocess
import sys

from rich.console import Console

import mutatenn_passes as mn
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.cli import main
from mutatenn_passes.commands import operators as operators_cmd
from mutatenn_passes.kernel_ir import kernel_module


def test_operators_lists_the_registry(capsys):
    assert main(["operators", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [s.as_dict() for s in mn.operators()]
    assert main(["operators"]) == 0
    table = capsys.readouterr().out
    assert f"{len(listed)} mutation operators" in table
    assert "graph" in table and "kernel" in table  # (rich folds the IDs at 80 columns)


def test_mutants_lists_the_sites_without_building(tmp_path, capsys, monkeypatch):
    model_path = tiny_campaign(tmp_path).parent / "tiny.onnx"
    args = ["mutants", "--model", str(model_path), "--operators",
            "relu_to_sigmoid,sigmoid_to_relu,cond_lt_to_le"]
    assert main(args + ["--json"]) == 0
    listed = {o["operator"]: o for o in json.loads(capsys.readouterr().out)["operators"]}
    model = mn.load_model(model_path)
    kernels = kernel_module(model, "llvm-x86-64", "s_tir")
    assert [s["id"] for s in listed["relu_to_sigmoid"]["sites"]] == \
        [s.id for s in mn.find_sites("relu_to_sigmoid", model.mod)]
    assert len(listed["relu_to_sigmoid"]["sites"]) == 2
    assert listed["sigmoid_to_relu"]["sites"] == []
    assert [s["id"] for s in listed["cond_lt_to_le"]["sites"]] == \
        [s.id for s in mn.find_sites("cond_lt_to_le", kernels)]
    assert listed["cond_lt_to_le"]["sites"] and listed["cond_lt_to_le"]["level"] == "kernel"
    out = io.StringIO()
    monkeypatch.setattr(operators_cmd, "console", Console(width=200, file=out))
    assert main(args) == 0
    row = next(line for line in out.getvalue().splitlines() if "sigmoid_to_relu" in line)
    assert "not applicable: no site" in row
    assert main(["mutants", "--model", str(model_path), "--operators", "relu_to_sigmod"]) == 2
    err = capsys.readouterr().err
    assert "unknown mutation operator 'relu_to_sigmod'" in err and "relu_to_sigmoid" in err


def test_bad_run_flags_are_one_line_errors(tmp_path, capsys):
    path = tiny_campaign(tmp_path)
    for flags, message in ((["-j", "0"], "--workers: workers must be an integer >= 1, not 0"),
                           (["--timeout", "0"], "--timeout: timeout must be a positive number")):
        assert main(["run", str(path), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing ran


def test_lock_then_run_with_output_workers_timeout_and_kept_artifacts(tmp_path, capsys):
    path = tiny_campaign(tmp_path, operators='use = ["relu_to_sigmoid"]\nsites = [0]')
    out = tmp_path / "elsewhere"
    out.mkdir()
    # Another process holds the output folder: the run refuses to start, with one line.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from mutatenn_passes.campaign.scoring.lock import OutputLock\n"
         "with OutputLock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(600)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["run", str(path), "-o", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert "another campaign is running in this output folder" in err
        assert not (out / "results.db").exists()
    finally:
        holder.kill()
        holder.wait()
    # Released (even by a killed holder): the run goes ahead with every flag applied.
    assert main(["run", str(path), "-o", str(out), "-j", "1", "--timeout", "77",
                 "--keep-artifacts", "-q"]) == 0
    assert not (tmp_path / "out").exists()  # -o replaces the file's output folder
    db = sqlite3.connect(out / "results.db")
    config = json.loads(dict(db.execute("SELECT key, value FROM meta"))["config"])
    assert config["workers"] == 1 and config["timeout"] == 77 and config["keep_artifacts"]
    rows = db.execute("SELECT status, worker, timeout_s, build_mode, artifact FROM results "
                      "WHERE status != 'not_applicable'").fetchall()
    assert len(rows) == 2  # the original and one mutant
    for status, worker, timeout_s, build_mode, artifact in rows:
        assert status == "ok" and worker == 0 and timeout_s == 77
        assert build_mode == "full"  # a kept artifact is one exportable library
        assert artifact.startswith(str(out / "artifacts"))
    kept = {p.name.split("-", 1)[1]: p for p in (out / "artifacts").iterdir()}
    assert sorted(kept) == ["original-llvm-x86-64", "relu_to_sigmoid-llvm-x86-64"]
    for folder in kept.values():
        assert (folder / "model.so").stat().st_size > 0 and (folder / "model.so.json").exists()
        assert (folder / "ir" / "relax.py").exists()
    images = mn.load_images([tmp_path / "images"])  # the kept libraries load and run
    mutant = mn.load_artifact(kept["relu_to_sigmoid-llvm-x86-64"] / "model.so").run(images)
    original = mn.load_artifact(kept["original-llvm-x86-64"] / "model.so").run(images)
    assert mutant.outputs.shape == original.outputs.shape == (3, 10)
    assert not (mutant.outputs == original.outputs).all()
