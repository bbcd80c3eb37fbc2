"""Campaign progress: on a terminal (rich), counts built / run / remaining, the mutants being
worked on (and on a Ray cluster, the results each node has given), an ETA, and a summary table
at the end; the CLI without a terminal prints one plain
line per finished task instead. A campaign run from Python without a terminal (a notebook)
gets a `tqdm.auto` bar: a widget in Jupyter, a text bar elsewhere."""

from __future__ import annotations

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from ...ui import console, errors, words_column
from ..config.ignore import unmatched_warnings
from ..scoring.run_history import wall_text


class CampaignUI:
    """Progress display; ``quiet`` prints nothing but the final summary."""

    def __init__(self, quiet: bool = False, live: bool | None = None):
        self.quiet = quiet
        self.live_mode = console.is_terminal if live is None else live
        self.progress = None
        self.live = None
        self.task_id = None
        self.stats = None

    def phase(self, message: str) -> None:
        if self.quiet:
            return
        if self.live_mode:
            errors.print(f"[dim]{message}[/]")
        else:
            console.print(message, highlight=False)

    def start(self, stats, plan) -> None:
        self.stats = stats
        planned = len(plan.mutants())
        na = sum(t.planned_status == "not_applicable" for t in plan.tasks)
        eq = sum(t.planned_status == "equivalent" for t in plan.tasks)
        dup = sum(t.duplicate_of is not None for t in plan.tasks)
        if not self.quiet:
            console.print(f"planned {planned} mutant(s) + {len(plan.originals())} original "
                          f"build(s): {na} not applicable, {eq} equivalent, {dup} duplicate "
                          f"(built once); {stats.total} build(s), {stats.skipped} already "
                          f"done in an earlier run")
        if self.quiet or not self.live_mode:
            return
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.task_id = self.progress.add_task("mutants", total=stats.total,
                                              completed=stats.done)
        self.live = Live(self._render(), console=console, refresh_per_second=4)
        self.live.start()

    def _render(self):
        s = self.stats
        remaining = s.total - s.done
        self.progress.update(self.task_id, completed=s.done,
                             description=f"built {s.built} · run {s.ran} · "
                                         f"remaining {remaining}")
        lines = [Text(f"  {w}: {label}", style="dim") for w, label in sorted(s.current.items())]
        if s.nodes:
            lines.insert(0, Text("  done per node: " + " · ".join(
                f"{node} {n}" for node, n in sorted(s.nodes.items())), style="dim"))
        return Group(self.progress, *lines)

    def update(self, stats) -> None:
        self.stats = stats
        if self.live is not None:
            self.live.update(self._render())

    def result(self, task, status, error, stats) -> None:
        self.stats = stats
        if self.quiet:
            return
        if self.live is None:
            first = (error or "").strip().splitlines()
            why = f" — {first[0][:120]}" if first and status != "ok" else ""
            console.print(f"[{stats.done}/{stats.total}] {status:<15} {task.label}{why}",
                          highlight=False, markup=False)
        else:
            if status not in ("ok",):
                first = (error or "").strip().splitlines()
                self.live.console.print(f"  {status}: {task.label}"
                                        + (f" — {first[0][:100]}" if first else ""),
                                        markup=False, highlight=False)
            self.live.update(self._render())

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def summary(self, result, out) -> None:
        if result is None:
            return
        print_summary(result, out)


def print_summary(result: dict, out) -> None:
    s, campaign = result["summary"], result["campaign"]
    ignored = s["overall"]["ignored"] > 0  # a column only when the ignore list matched
    pending = s["overall"].get("pending", 0) > 0  # a column only in a partial campaign
    partial = campaign.get("partial")
    table = Table(title=f"campaign {campaign['name']}: mutation score by category"
                        + (f" ({partial})" if partial else ""),
                  caption="failed = build failed + crashed + timeout; score = killed / "
                          "(mutants - equiv - n/a - can't run"
                          + (" - ignored" if ignored else "")
                          + (" - pending" if pending else "") + ")")
    words_column(table, "category", list(s["category"]) + ["all"])
    for col in ("mutants", "killed", "survived", "equiv", "n/a", "failed", "can't run") \
            + (("ignored",) if ignored else ()) + (("pending",) if pending else ()) \
            + ("score",):
        table.add_column(col, justify="right")

    def row(name, g, style=None):
        score = g["mutation_score"]
        table.add_row(name, str(g["mutants"]), str(g["killed"]), str(g["survived"]),
                      str(g["equivalent"]), str(g["not_applicable"]),
                      str(g["build_failed"] + g["crashed"] + g["timeout"]),
                      str(g["cannot_run_here"] + g["device_lost"]),
                      *((str(g["ignored"]),) if ignored else ()),
                      *((str(g["pending"]),) if pending else ()),
                      "n/a" if score is None else f"{score:.2f}", style=style)

    for name, g in s["category"].items():
        row(name, g)
    row("all", s["overall"], style="bold")
    # The table fits when its natural width, with the category names wrapped between words
    # (their column at its min_width), fits; narrower, rich would cut headers or columns.
    names = list(s["category"]) + ["category"]
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural - max(map(len, names)) + table.columns[0].min_width <= console.width:
        console.print(table)
    else:  # narrower, the table would cut headers or columns: one line per category
        console.print(table.title, soft_wrap=True)
        for name, g in [*s["category"].items(), ("all", s["overall"])]:
            console.print(_score_line(name, g), soft_wrap=True)
    console.print(f"reference labelling: {campaign['reference']}; results{_wall(campaign)} "
                  f"in {out} (report.html, results.json, results.jsonl, mutants.csv, "
                  "summary.csv, results.db)", highlight=False, soft_wrap=True)
    for line in reference_lines(result.get("reference", [])):
        console.print(line, highlight=False, soft_wrap=True)
    for note in campaign.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    for warning in unmatched_warnings(result["ignore"]):
        errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def reference_lines(rows: list[dict]) -> list[str]:
    """The reference runtime in the summary (rich markup): a line per original that
    disagrees with it, a line per model without one, and one line when all the rest agree."""
    lines = [f"[red]reference:[/] {escape(r['model'])} on {escape(r['target'])}: "
             f"{escape(r['verdict'])}" for r in rows if r["agree"] is False]
    missing = dict.fromkeys((r["model"], r["reason"]) for r in rows if r["reason"])
    lines += [f"[yellow]reference:[/] {escape(model)}: no reference: {escape(reason)}"
              for model, reason in missing]
    agree = [r for r in rows if r["agree"]]
    if agree and not any(r["agree"] is False for r in rows):
        runtimes = ", ".join(dict.fromkeys(r["runtime"] for r in agree))
        counts = "/".join(dict.fromkeys(f"{r['top1_agree']}/{r['images']}" for r in agree))
        lines.append(f"reference: TVM agrees with {escape(runtimes)} on {counts} images for "
                     f"each model/target ({len(agree)} checked)")
    return lines


def _score_line(name: str, g: dict) -> str:
    """One category's scores on a line (for terminals too narrow for the table): the score,
    then the counts that are not zero."""
    score = "n/a" if g["mutation_score"] is None else f"{g['mutation_score']:.2f}"
    counts = [("killed", g["killed"]), ("survived", g["survived"]),
              ("equivalent", g["equivalent"]), ("not applicable", g["not_applicable"]),
              ("failed", g["build_failed"] + g["crashed"] + g["timeout"]),
              ("can't run", g["cannot_run_here"] + g["device_lost"]),
              ("ignored", g["ignored"]), ("pending", g.get("pending", 0))]
    return (f"  {name}: score {score}; {g['mutants']} mutant(s): "
            + ", ".join(f"{n} {what}" for what, n in counts if n))


def _wall(campaign: dict) -> str:
    text = wall_text(campaign)
    return f" in {text}" if text else ""


class NotebookProgress:
    """Progress of a campaign run from Python without a terminal: one `tqdm.auto` bar over
    the builds (a widget in Jupyter), the failures written above it, the summary at the end.
    ``file`` is where a text bar goes (default: stderr)."""

    def __init__(self, file=None):
        self.file = file
        self.bar = None

    def phase(self, message: str) -> None:
        if self.bar is None:
            print(message, file=self.file, flush=True)

    def start(self, stats, plan) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=stats.total, initial=stats.done, desc="mutatenn campaign",
                        unit="build", file=self.file)

    def update(self, stats) -> None:
        if self.bar is not None:
            self.bar.n = stats.done
            self.bar.set_postfix_str(f"built {stats.built}, run {stats.ran}")

    def result(self, task, status, error, stats) -> None:
        if self.bar is not None and status != "ok":
            first = (error or "").strip().splitlines()
            self.bar.write(f"{status}: {task.label}" + (f" — {first[0][:100]}" if first else ""),
                           file=self.file)
        self.update(stats)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self, result, out) -> None:
        if result is not None:
            print_summary(result, out)


def make_progress() -> CampaignUI | NotebookProgress:
    """The progress display of a campaign run from Python: a live terminal display on a
    terminal, a `tqdm.auto` bar otherwise."""
    return CampaignUI() if console.is_terminal else NotebookProgress()
