"""The campaign database: one SQLite file (``results.db``) in the output folder.

Everything a report needs is here, written as it happens: the campaign configuration and its
text, seeds, versions, the plan (every task with its operator, sites, descriptions, IR hash and
IR diff), per finished task its status, error, timings and per-image results (top-k
classes and scores, a digest of the full output vector, the vector itself, latency), and per
original that ran, how it compares with the model's reference runtime (`reference_check`).

A result and its per-image rows are written in one transaction, so a process killed at any
point leaves either the whole result or none of it; a rerun finds the finished keys and does
only the rest. The database is in WAL mode and every commit is durable before the next task is
handed out.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

DB_NAME = "results.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT, model_index INTEGER,
    model_digest TEXT, target TEXT, target_ref TEXT, operator TEXT, level TEXT,
    category TEXT, phase TEXT, kernels TEXT, params TEXT, mode TEXT, selection TEXT,
    sites TEXT, site_indices TEXT, sites_found INTEGER, grp TEXT, ir_hash TEXT,
    planned_status TEXT, duplicate_of TEXT, diff TEXT, note TEXT, report TEXT);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, error TEXT, stage TEXT, exit_code INTEGER,
    signal TEXT, build_s REAL, load_s REAL, run_s REAL, prepare_s REAL, timeout_s REAL, worker INTEGER,
    ir_verified INTEGER, artifact TEXT, finished_at REAL, build_mode TEXT);
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT NOT NULL, idx INTEGER NOT NULL, image TEXT, classes TEXT, scores TEXT,
    digest TEXT, latency_ms REAL, vector BLOB, PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS reference_checks (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reason TEXT, result TEXT);
"""

_TASK_COLUMNS = ("key", "kind", "model", "model_index", "model_digest", "target", "target_ref",
                 "operator", "level", "category", "phase", "kernels", "params", "mode",
                 "selection", "sites", "site_indices", "sites_found", "grp", "ir_hash",
                 "planned_status", "duplicate_of", "diff", "note", "report")
_JSON_TASK_FIELDS = {"params", "sites", "site_indices", "report"}

#: Keys bound in one query (SQLite allows 32766 parameters since 3.32, 999 before).
_KEYS_PER_QUERY = 900

#: Statuses a worker (or the planner) can record; see docs/campaign.md.
STATUSES = ("ok", "not_applicable", "equivalent", "build_failed", "crashed", "timeout",
            "cannot_run_here", "device_lost")


def vector_digest(vector: np.ndarray) -> str:
    """A digest of a full output vector (float32 bytes, shape included)."""
    v = np.ascontiguousarray(vector, dtype=np.float32)
    return hashlib.sha256(str(v.shape).encode() + v.tobytes()).hexdigest()[:16]


class Store:
    """The campaign database of one output folder."""

    def __init__(self, folder: str | Path, create: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            from ...errors import MutateNNError

            raise MutateNNError(f"{self.folder}: no campaign database ({DB_NAME}) here")
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(results)")}
        if "build_mode" not in columns:  # a database written before the column existed
            self.db.execute("ALTER TABLE results ADD COLUMN build_mode TEXT")

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, **values) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for k, v in values.items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, json.dumps(v)))

    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    # -- plan -------------------------------------------------------------------------------
    def save_plan(self, tasks) -> None:
        """Record every task of the current plan and the plan's order (one transaction)."""
        with self.db:
            self.db.execute("BEGIN")
            for t in tasks:
                row = t.as_row()
                row["grp"] = row.pop("group")
                values = [json.dumps(row[c]) if c in _JSON_TASK_FIELDS else row[c]
                          for c in _TASK_COLUMNS]
                self.db.execute(f"INSERT OR REPLACE INTO tasks ({', '.join(_TASK_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(_TASK_COLUMNS))})", values)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('plan', ?)",
                            (json.dumps([t.key for t in tasks]),))

    def save_diffs(self, diffs: dict[str, str]) -> None:
        """Record the IR diffs of planned tasks ({key: diff}; `plan.Plan.compute_diffs`)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE tasks SET diff = ? WHERE key = ?",
                                [(diff, key) for key, diff in diffs.items()])

    def tasks(self, keys=None) -> list[dict]:
        """Task rows (in plan order when ``keys`` is given)."""
        rows = [dict(zip(_TASK_COLUMNS, values)) for values in self.db.execute(
            f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks")]
        for c in _JSON_TASK_FIELDS:  # one JSON document per column: a call per row costs more
            decoded = json.loads("[" + ",".join(r[c] or "null" for r in rows) + "]")
            for row, value in zip(rows, decoded):
                row[c] = value
        for row in rows:
            row["group"] = row.pop("grp")
        rows = {row["key"]: row for row in rows}
        if keys is None:
            return list(rows.values())
        return [rows[k] for k in keys if k in rows]

    def diffs(self) -> dict[str, str]:
        """Each planned mutant's IR diff, by key (mutants without one are absent)."""
        return dict(self.db.execute("SELECT key, diff FROM tasks WHERE kind = 'mutant' "
                                    "AND diff IS NOT NULL AND diff != ''"))

    # -- results ----------------------------------------------------------------------------
    def finished(self) -> dict[str, dict]:
        cur = self.db.execute("SELECT key, status, timeout_s FROM results")
        return {k: {"status": s, "timeout_s": t} for k, s, t in cur}

    def mutants_finished(self) -> tuple[int, int]:
        """(finished, planned) mutants of the current plan; a duplicate is finished when the
        mutant it duplicates is (the analysis counts the rest as ``pending``)."""
        plan = set(self.meta().get("plan", []))
        done = {k for (k,) in self.db.execute("SELECT key FROM results")}
        mutants = [(key, dup) for key, dup in self.db.execute(
            "SELECT key, duplicate_of FROM tasks WHERE kind = 'mutant'") if key in plan]
        return sum((dup or key) in done for key, dup in mutants), len(mutants)

    def record(self, key: str, status: str, *, error: str = "", stage: str = "",
               exit_code: int | None = None, signal: str = "", build_s: float | None = None,
               load_s: float | None = None, run_s: float | None = None, prepare_s: float | None = None,
               timeout_s: float | None = None, worker: int | None = None,
               ir_verified: bool | None = None, artifact: str = "", build_mode: str = "",
               outputs: list[dict] | None = None) -> None:
        """Write one finished task and its per-image results atomically."""
        assert status in STATUSES, status
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM outputs WHERE key = ?", (key,))
            self.db.execute(
                "INSERT OR REPLACE INTO results (key, status, error, stage, exit_code, signal, "
                "build_s, load_s, run_s, prepare_s, timeout_s, worker, ir_verified, artifact, "
                "finished_at, build_mode) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, status, error, stage, exit_code, signal, build_s, load_s, run_s, prepare_s,
                 timeout_s, worker, None if ir_verified is None else int(ir_verified),
                 artifact, time.time(), build_mode))
            for i, out in enumerate(outputs or []):
                vec = np.ascontiguousarray(out["vector"], dtype=np.float32)
                self.db.execute(
                    "INSERT INTO outputs VALUES (?,?,?,?,?,?,?,?)",
                    (key, i, out["image"], json.dumps(out["classes"]),
                     json.dumps(out["scores"]), vector_digest(vec), out["latency_ms"],
                     vec.tobytes()))

    def results(self) -> dict[str, dict]:
        cols = ("key", "status", "error", "stage", "exit_code", "signal", "build_s", "load_s",
                "run_s",
                "prepare_s", "timeout_s", "worker", "ir_verified", "artifact", "finished_at",
                "build_mode")
        return {row[0]: dict(zip(cols, row))
                for row in self.db.execute(f"SELECT {', '.join(cols)} FROM results")}

    def diff(self, key: str) -> str:
        """The IR diff planned for task ``key`` ("" for an original, an equivalent mutant or an
        unknown key), read alone: `tasks` reads every task's."""
        row = self.db.execute("SELECT diff FROM tasks WHERE key = ?", (key,)).fetchone()
        return (row[0] or "") if row else ""

    def outputs(self, key: str) -> list[dict]:
        """One task's per-image results, in image order."""
        return self.outputs_of([key]).get(key, [])

    def outputs_of(self, keys) -> dict[str, list[dict]]:
        """Per-image results of many tasks, by key (tasks without any are absent), read in
        queries of at most `_KEYS_PER_QUERY` keys; each query's classes and scores are
        decoded as one JSON document (a call per row costs more than the query)."""
        keys, out = list(keys), {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start:start + _KEYS_PER_QUERY]
            rows = self.db.execute(
                "SELECT key, image, classes, scores, digest, latency_ms, vector FROM outputs "
                f"WHERE key IN ({', '.join('?' * len(chunk))}) ORDER BY key, idx",
                chunk).fetchall()
            classes = json.loads("[" + ",".join(r[2] for r in rows) + "]")
            scores = json.loads("[" + ",".join(r[3] for r in rows) + "]")
            for (key, image, _, _, digest, latency, vector), c, s in zip(rows, classes, scores):
                out.setdefault(key, []).append(
                    {"image": image, "classes": c, "scores": s, "digest": digest,
                     "latency_ms": latency, "vector": np.frombuffer(vector, dtype=np.float32)})
        return out

    # -- reference runtime checks -----------------------------------------------------------
    def record_reference_check(self, key: str, fingerprint: str, *, reason: str | None = None,
                               result: dict | None = None) -> None:
        """Original ``key``'s comparison with the reference runtime (`reference.compare_outputs`'
        dict), or the ``reason`` there is none; ``fingerprint`` names the outputs compared."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO reference_checks VALUES (?, ?, ?, ?)",
                            (key, fingerprint, reason,
                             None if result is None else json.dumps(result)))

    def reference_checks(self) -> dict[str, dict]:
        """Every stored reference check, by the original's key."""
        return {key: {"fingerprint": fp, "reason": reason,
                      "result": None if result is None else json.loads(result)}
                for key, fp, reason, result in self.db.execute(
                    "SELECT key, fingerprint, reason, result FROM reference_checks")}
