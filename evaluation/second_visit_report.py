"""The second-visit evaluation's report (evaluation/second_visit.py's JSON): the summary lines, the Markdown page and
the plot of visit two's FRR against threshold with and without the confirmations, with Wilson interval bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.figures import Figure, threshold_axes
from evaluation.gate_report import markdown_table, text_table

VISITS = {"visit_one": "visit one", "visit_two_without": "visit two, without", "visit_two_with": "visit two, with"}
RATES = {
    "frr": "FRR, all employees",
    "frr_denied_on_visit_one": "FRR, those kept out on visit one",
    "frr_confirmed": "FRR, those with a face confirmed",
    "far": "stranger FAR",
    "misidentified": "misidentified",
}


def rate_text(rate: dict[str, Any], interval: bool = True) -> str:
    """ "3/20 (15.0%, 5.2-36.0)": count, total, rate and Wilson's 95 % interval; "-" with nobody to rate."""
    if rate["rate"] is None:
        return "-"
    low, high = rate["ci95"]
    ci = f", {100 * low:.1f}-{100 * high:.1f}" if interval else ""
    return f"{rate['count']}/{rate['of']} ({100 * rate['rate']:.1f}%{ci})"


def configured_rows(report: dict[str, Any]) -> list[list[str]]:
    """The configured point: one row per rate, one column per visit (visit two with and without confirmations)."""
    point = report["configured"]
    rows = [["rate (95% interval)", *VISITS.values()]]
    rows += [[label, *(rate_text(point[visit][key]) for visit in VISITS)] for key, label in RATES.items()]
    return rows


def grid_rows(report: dict[str, Any]) -> list[list[str]]:
    """Every policy x threshold: FRR (all, and of visit one's kept-out) and FAR, visit two without and with."""
    header = ["N/M", "threshold", "FRR visit one", "FRR v2 without", "FRR v2 with", "kept-out FRR v2 without"]
    rows = [header + ["kept-out FRR v2 with", "FAR v2 without", "FAR v2 with", "misidentified v2 with"]]
    for p in report["grid"]:
        without, with_ = p["visit_two_without"], p["visit_two_with"]
        rows.append(
            [
                p["policy"],
                f"{p['threshold']:.3f} {p['label']}",
                rate_text(p["visit_one"]["frr"], False),
                rate_text(without["frr"]),
                rate_text(with_["frr"]),
                rate_text(without["frr_denied_on_visit_one"], False),
                rate_text(with_["frr_denied_on_visit_one"], False),
                rate_text(without["far"], False),
                rate_text(with_["far"], False),
                rate_text(with_["misidentified"], False),
            ]
        )
    return rows


def far_inside(report: dict[str, Any]) -> bool:
    """Whether visit two's stranger FAR with the confirmations lies inside the interval of the same strangers' walks
    without them (the confirmed faces did not let measurably more strangers in)."""
    point = report["configured"]
    low, high = point["visit_two_without"]["far"]["ci95"]
    return bool(low <= point["visit_two_with"]["far"]["rate"] <= high)


def far_line(report: dict[str, Any]) -> str:
    point = report["configured"]
    return (
        f"Stranger FAR on visit two with the confirmations, {rate_text(point['visit_two_with']['far'])}, inside the"
        f" interval of the same walks without them ({rate_text(point['visit_two_without']['far'])}):"
        f" {'yes' if far_inside(report) else 'NO'}; on visit one {rate_text(point['visit_one']['far'])}."
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    denials = report["denials"]
    return [
        f"visit one: {denials['walks_kept_out']} employees kept out, {denials['events']} denied events;"
        f" confirmed {denials['confirmed']}, refused {denials['refused']} {denials['refusals']}",
        text_table(configured_rows(report)),
        far_line(report),
    ]


def markdown_report(report: dict[str, Any], command: str = "", plot_name: str = "second-visit.png") -> str:
    """The run as a Markdown page: setup, the confirmations, the configured point, the grid, the plot."""
    lines = _md_setup(report, command) + _md_denials(report)
    lines += [
        "",
        "## At the configured point",
        "",
        "Each cell: walks kept out (or let in, for FAR and misidentified), of all, the rate and Wilson's 95% interval.",
        "",
        markdown_table(configured_rows(report)),
        "",
        far_line(report),
        "",
        "## Across policies and thresholds",
        "",
        "Intervals on visit two's FRR of all employees; 'kept-out': the employees visit one kept out.",
        "",
        markdown_table(grid_rows(report)),
        "",
        f"![visit two's FRR against threshold, with and without the confirmations]({plot_name})",
    ]
    return "\n".join(lines) + "\n"


def _md_setup(report: dict[str, Any], command: str) -> list[str]:
    setup, configured = report["setup"], report["setup"]["configured"]
    lines = [
        "# Gate walk-up evaluation: the second visit",
        "",
        f"Model `{setup['model_id']}`; {setup['employees']} employees (LFW {setup['people_file']} people with "
        f"{setup['min_photos']}+ photos, seed {setup['seed']}) enrolled from up to {setup['max_enrol_photos']} photos,"
        f" and {setup['strangers']} strangers. Everyone walks up twice; an employee's two visits use two different "
        "photos, neither enrolled; a stranger's too when they have two "
        f"({setup['strangers_same_photo_twice']} strangers have one photo and walk with it twice). "
        f"Configured policy {configured['policy']} at threshold {configured['threshold']:.3f} "
        f"(FAR {configured['target_far']}), early_deny = {str(configured['early_deny']).lower()}; "
        f"{setup['fps']:g} fps, {setup['walk_s']:g} s walks; {setup['frames'][0]} + {setup['frames'][1]} frames. "
        f"Wall time {setup['seconds'] / 60:.1f} min.",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    refused = setup["refused"]
    lines += ["", f"Enrolled {setup['enrolled']}/{setup['employees']} employees"]
    lines[-1] += f"; {len(refused)} refused by `add_person`, left out of the rates:" if refused else "."
    lines += [f"- {person}: {status.removeprefix('refused: ')}" for person, status in refused.items()]
    checks = report["checks"]
    return lines + [
        "",
        "Self-checks: "
        + "; ".join(f"{name.replace('_', ' ')}: {'yes' if ok else 'NO'}" for name, ok in checks.items())
        + ".",
    ]


def _md_denials(report: dict[str, Any]) -> list[str]:
    denials, setup = report["denials"], report["setup"]
    lines = [
        "",
        "## Visit one's denials, confirmed",
        "",
        f"Between the visits every denied access event of an employee whose visit-one walk did not open the door is "
        f"confirmed as that employee (the harness knows who walked: only true matches) through `{setup['confirm']}`: "
        "the event's kept face becomes a template only if it passes the quality gate again, scores at or above the "
        "card's review threshold ([enrollment] review_far) for them, and no one else scores as high or at the gate's"
        " threshold.",
        "",
        f"Visit one kept out {denials['walks_kept_out']} employees ({denials['walks_without_usable_face']} without a "
        f"usable face, so no event to confirm); {denials['events']} denied events of {denials['people_with_events']} "
        f"of them: {denials['confirmed']} confirmed ({denials['people_confirmed']} people), {denials['refused']} "
        "refused by the rule" + (":" if denials["refusals"] else "."),
    ]
    lines += [f"- {kind}: {count}" for kind, count in denials["refusals"].items()]
    lines += ["", "| person | event | visit-one verdict | confirmation |", "|---|---|---|---|"]
    lines += [f"| {i['person']} | {i['event_id']} | {i['reason']} | {i['message']} |" for i in denials["items"]]
    return lines


def plot_second_visit(report: dict[str, Any], path: Path) -> None:
    """Visit two's FRR against threshold at the configured N/M, without and with the confirmations (Wilson bands):
    all employees (left), those visit one kept out (middle); strangers' FAR (right)."""
    sweep, setup = report["sweep"], report["setup"]
    thresholds = sweep["thresholds"]
    figure = Figure(figsize=(14, 4.5), dpi=100)
    panels = figure.subplots(1, 3, sharex=True, sharey=True)
    panel_rates = (("frr", "FRR, all employees"), ("frr_denied_on_visit_one", "FRR, kept out on visit one"))
    for axes, (key, title) in zip(panels, (*panel_rates, ("far", "stranger FAR")), strict=True):
        for visit, colour in (("visit_two_without", "tab:red"), ("visit_two_with", "tab:green")):
            rates = [point[visit][key] for point in sweep["points"]]
            values = [r["rate"] if r["rate"] is not None else float("nan") for r in rates]
            axes.plot(thresholds, values, color=colour, label=VISITS[visit] + " confirmations")
            low, high = [r["ci95"][0] for r in rates], [r["ci95"][1] for r in rates]
            axes.fill_between(thresholds, low, high, color=colour, alpha=0.15, linewidth=0)
        threshold_axes(axes, setup["thresholds"], title)
    panels[0].set_ylabel("share of walks (band: Wilson 95%)")
    panels[0].legend(fontsize=8, loc="upper left")
    figure.suptitle(
        f"Second visit, policy {setup['configured']['policy']}, model {setup['model_id']} (dotted: card thresholds)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
