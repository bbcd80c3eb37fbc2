"""The wall time of every run of a campaign, so that a resumed campaign shows its whole cost.

Each run of a campaign in an output folder is one entry of the database's ``run_history``
meta value: when it started and ended, and how it ended (``finished`` or ``interrupted``). A
run killed outright (SIGKILL, a lost machine) never records its end; its entry stays open and
is closed with the time of its last stored result, by the next run or by whoever reads it
while no campaign holds the folder (`lock.campaign_running`). Reports show the last run's
wall time and the total over all runs (`wall_times`, `wall_text`).
"""

from __future__ import annotations

import time

KEY = "run_history"


def begin(store, started_at: float) -> None:
    """Record a run that started at ``started_at`` (seconds since the epoch), first closing
    the entry of a run that was killed before it could close its own."""
    history = _closed(store.meta().get(KEY, []), _finish_times(store), running=False)
    history.append({"started_at": started_at, "ended_at": None, "state": "running"})
    store.set_meta(**{KEY: history})


def end(store, state: str) -> None:
    """Close the current run's entry: it ended now, ``state`` (finished or interrupted)."""
    history = store.meta().get(KEY, [])
    if history and history[-1]["ended_at"] is None:
        history[-1].update(ended_at=time.time(), state=state)
        store.set_meta(**{KEY: history})


def wall_times(history: list[dict], finish_times: list[float], running: bool) -> dict:
    """``runs``, ``last_run_s`` and ``total_s`` (wall seconds, all runs together) of a
    ``run_history``; an open entry counts up to now while ``running``, else up to the last of
    ``finish_times`` (when its results were stored) after it started."""
    history = _closed(history, finish_times, running)
    walls = [max(0.0, e["ended_at"] - e["started_at"]) for e in history]
    return {"runs": len(walls), "last_run_s": walls[-1] if walls else None,
            "total_s": sum(walls) if walls else None,
            "killed_runs": sum(e["state"] == "killed" for e in history)}


def _finish_times(store) -> list[float]:
    return [r["finished_at"] for r in store.results().values() if r["finished_at"]]


def _closed(history: list[dict], finish_times: list[float], running: bool) -> list[dict]:
    """``history`` with its open entry closed (see `wall_times`); killed runs are marked."""
    out = [dict(e) for e in history]
    for i, e in enumerate(out):
        if e["ended_at"] is not None:
            continue
        if running and i == len(out) - 1:
            e["ended_at"] = time.time()
            continue
        until = out[i + 1]["started_at"] if i + 1 < len(out) else float("inf")
        during = [t for t in finish_times if e["started_at"] <= t < until]
        e.update(ended_at=max(during, default=e["started_at"]), state="killed")
    return out


def wall_text(campaign: dict) -> str:
    """An analysis's ``campaign`` wall time as the reports show it: ``12 s``, or after a
    resume ``12 s (last run; 40 s over 3 runs)``; '' when unknown (a database older than the
    history falls back to its last run's seconds)."""
    wall = campaign.get("wall_time") or {}
    last = wall.get("last_run_s")
    if last is None:
        last = (campaign.get("seconds") or {}).get("total_wall")
        return f"{last:.0f} s" if last else ""
    if wall["runs"] > 1:
        return f"{last:.0f} s (last run; {wall['total_s']:.0f} s over {wall['runs']} runs)"
    return f"{last:.0f} s"
