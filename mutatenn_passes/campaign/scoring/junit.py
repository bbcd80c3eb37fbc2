"""A campaign as a JUnit XML report, so that CI systems show surviving mutants as failing tests.

One ``<testcase>`` per mutant and target: a killed mutant passes; a survivor (built, ran, same
top-1 as the original on every image) fails, with its sites and how close its outputs came; a
mutant that did not run to a comparison is skipped with its status as the message
(``equivalent``, ``not_applicable``, ``build_failed``, ``crashed``, ``timeout``,
``cannot_run_here``, ``device_lost``, or ``pending`` in a partial campaign) and its error text;
an ignored mutant is skipped with its reason. The ``<testsuite>`` carries the mutation score
and the threshold as properties. Written with `xml.etree.ElementTree` in the common JUnit
shape (testsuites / testsuite / testcase with failure or skipped).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def _case_name(m: dict) -> str:
    sites = ",".join(s["id"] for s in m["sites"]) or "no site"
    return f"{m['operator']}[{sites}]"


def _survivor_text(m: dict) -> str:
    metrics = m.get("metrics") or {}
    sites = "\n".join(f"  {s['index']}: {s['description']}" for s in m["sites"])
    return (f"mutant {m['key']} of {m['model']} on {m['target']}: the top-1 class of every "
            f"one of {metrics.get('images', 0)} image(s) equals the original's "
            f"(max |output difference| {_number(metrics.get('max_abs_diff'))}, top-5 RBO "
            f"{_number(metrics.get('rbo'))})\nsites:\n{sites}")


def _number(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def junit_tree(result: dict) -> ET.ElementTree:
    """The JUnit document of ``result`` (an analysis, `analysis.analyse`)."""
    campaign, overall = result["campaign"], result["summary"]["overall"]
    mutants = result["mutants"]
    suite = ET.Element("testsuite", name=f"mutatenn campaign {campaign['name']}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (("mutation_score", overall["mutation_score"]),
                        ("fail_under", campaign["config"].get("fail_under")),
                        ("seed", campaign["seed"]), ("state", campaign["state"])):
        ET.SubElement(properties, "property", name=name,
                      value="" if value is None else str(value))
    failures = skipped = 0
    total_time = 0.0
    for m in mutants:
        seconds = (m.get("build_s") or 0.0) + (m.get("run_s") or 0.0)
        total_time += seconds
        case = ET.SubElement(suite, "testcase", name=_case_name(m),
                             classname=f"{m['model']}.{m['target']}", time=f"{seconds:.3f}")
        if m.get("ignored"):
            skipped += 1
            ET.SubElement(case, "skipped", message=f"ignored: {m['ignore_reason']}")
        elif m["status"] != "ok":
            skipped += 1
            first = (m.get("error") or m.get("note") or "").strip().splitlines()
            element = ET.SubElement(case, "skipped", message=m["status"] + (
                f": {first[0][:200]}" if first else ""))
            element.text = m.get("error") or m.get("note") or ""
        elif not m.get("killed"):
            failures += 1
            element = ET.SubElement(case, "failure", type="survived",
                                    message="survived: no image's top-1 class changed")
            element.text = _survivor_text(m)
    counts = {"tests": str(len(mutants)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": f"{total_time:.3f}"}
    suite.attrib.update(counts)
    root = ET.Element("testsuites", name="mutatenn", **counts)
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: dict, path: str | Path) -> Path:
    """Write the JUnit XML of ``result`` to ``path`` (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
    return path
