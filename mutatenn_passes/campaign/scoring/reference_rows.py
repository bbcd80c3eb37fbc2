"""The reference checks as a report shows them: one row per original that ran, read from the
campaign database (where `running.reference_check` stored each check under a `fingerprint`
of the outputs it compared).
"""

from __future__ import annotations

import hashlib

from .store import Store


def fingerprint(outputs: list[dict]) -> str:
    """Names the original's outputs a check compared (their images and vector digests)."""
    text = ";".join(f"{o['image']}={o['digest']}" for o in outputs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]



def reference_rows(store: Store, tasks: list[dict], results: dict, originals: dict) -> list:
    """One row per ``ok`` original of the plan (model x target): the reference runtime's
    verdict, its summary figures, or why there is none. ``originals`` are the originals'
    outputs by (model index, target), as `analysis` read them."""
    checks = store.reference_checks()
    rows = []
    for t in tasks:
        if t["kind"] != "original" or results.get(t["key"], {}).get("status") != "ok":
            continue
        row = {"model": t["model"], "model_index": t["model_index"], "target": t["target"],
               "key": t["key"], "runtime": None, "images": None, "top1_agree": None,
               "top5_overlap_mean": None, "max_abs_diff": None, "max_rel_diff": None,
               "unit": None, "agree": None, "reason": None, "per_image": []}
        check = checks.get(t["key"])
        outs = originals.get((t["model_index"], t["target"])) or []
        if check is None or check["fingerprint"] != fingerprint(outs):
            row["reason"] = "not checked yet (rerun the campaign to check it)"
        elif check["result"] is None:
            row["reason"] = check["reason"]
        else:
            r = check["result"]
            s = r["summary"]
            row.update(runtime=r["runtime"], images=s["images"], top1_agree=s["top1_agree"],
                       top5_overlap_mean=s["top5_overlap_mean"],
                       max_abs_diff=s["max_abs_diff"], max_rel_diff=s["max_rel_diff"],
                       unit=r["unit"], agree=s["agree"], verdict=s["verdict"],
                       per_image=r["images"])
        if row["reason"] is not None:
            row["verdict"] = f"no reference: {row['reason']}"
        rows.append(row)
    return rows
