"""Ignore lists: known-equivalent mutants and accepted survivors, kept out of the score.

``[operators] ignore`` names mutants by operator and site ID (``"add_to_subtract:main/lv10"``,
the IDs `mutatenn mutants` lists), each with a reason. A mutant is ignored when its operator is
the entry's and every site it rewrites is listed for that operator (a first-order mutant: its
one site), on every model and target. An ignored mutant is never dropped: it stays in every
table with its status, marked ``ignored`` with its reason, and only the scores leave it out
(`analysis` takes it out of their denominator, as it does equivalent mutants). An entry that
matches no mutant is returned with ``matched = 0`` so that the reports can warn about it: a
site ID that changed after a model or compiler update must not pass unnoticed.
"""

from __future__ import annotations

from collections import defaultdict


def mark_ignored(mutants: list[dict], entries: list[dict]) -> list[dict]:
    """Set ``ignored`` and ``ignore_reason`` on every mutant row (`analysis` rows: with
    ``operator`` and ``sites``); returns ``entries`` (``{id, reason}``) each with ``matched``,
    the number of mutant rows it ignored."""
    listed: dict[str, dict[str, int]] = defaultdict(dict)  # operator -> site ID -> entry
    for i, entry in enumerate(entries):
        operator, _, site = entry["id"].partition(":")
        listed[operator][site] = i
    matched = [0] * len(entries)
    for row in mutants:
        sites = [s["id"] for s in row["sites"]]
        of_operator = listed.get(row["operator"], {})
        hits = [of_operator[s] for s in sites if s in of_operator]
        row["ignored"] = bool(sites) and len(hits) == len(sites)
        row["ignore_reason"] = ""
        if row["ignored"]:
            row["ignore_reason"] = "; ".join(dict.fromkeys(entries[i]["reason"] for i in hits))
            for i in set(hits):
                matched[i] += 1
    return [{"id": e["id"], "reason": e["reason"], "matched": n}
            for e, n in zip(entries, matched)]


def unmatched_warnings(entries: list[dict]) -> list[str]:
    """One line per ignore entry that matched no mutant."""
    return [f"ignore entry {e['id']!r} matches no mutant of this campaign (a mutant is "
            "ignored when every site it rewrites is listed)" for e in entries
            if not e["matched"]]
