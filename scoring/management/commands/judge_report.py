"""`manage.py judge_report`: how well an LM judge agrees with the humans of a project."""

from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from scoring.report import Agreement, JudgeReport, JudgeReportError, judge_report


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "n/a" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def report_table(report: JudgeReport) -> str:
    """The report as readable text."""
    version = (
        f"version {report.judge_version!r}"
        if report.judge_version is not None
        else "its most recent label per comparison"
    )
    lines = [
        f"Judge {report.judge_name!r} ({version}) against the human majority "
        f"on project {report.project!r}",
        f"Comparisons: {report.n_human_labelled} with human labels, "
        f"{report.n_judge_labelled} labelled by the judge, {report.n} with both",
        f"Left out of accuracy, kappa and calibration: {report.n_no_majority} with a tied "
        f"human vote, {report.n_tie_majority} with a Tie majority",
        "",
        f"{'group':<28}{'n':>6}{'scored':>8}{'ties':>6}{'accuracy':>10}  {'95% CI':<17}"
        f"{'kappa':>7}  95% CI",
    ]

    def row(name: str, a: Agreement) -> str:
        return (
            f"{name:<28}{a.n:>6}{a.n_scored:>8}{a.n_judge_ties:>6}{_num(a.accuracy):>10}  "
            f"{_ci(a.accuracy_ci):<17}{_num(a.kappa):>7}  {_ci(a.kappa_ci):<17}".rstrip()
        )

    lines.append(row("all", report.overall))
    if report.judge_family:
        family = report.judge_family
        lines.append(row(f"involving {family!r}"[:27], report.with_family))
        lines.append(row(f"not involving {family!r}"[:27], report.without_family))
    else:
        lines.append("(no --family given: no self-preference split)")
    calibration = report.calibration
    lines += [
        "",
        f"Calibration of p_a on {calibration.n} scored labels with p_a: "
        f"Brier {_num(calibration.brier)}, ECE ({calibration.n_bins} bins) "
        f"{_num(calibration.ece)}",
        f"  {'bin':<12}{'mean p_a':>10}{'observed':>10}{'count':>7}",
    ]
    for b in calibration.bins:
        lines.append(
            f"  [{b.low:.1f}, {b.high:.1f}{']' if b.high >= 1 else ')'}  "
            f"{_num(b.mean_p_a):>10}{_num(b.observed):>10}{b.count:>7}"
        )
    consistency = report.position_consistency
    lines += [
        "",
        f"Position consistency: {_num(consistency.rate)} "
        f"({consistency.n} labels with the flag, of {report.n})",
        "",
        *(f"Note: {note}" for note in report.notes),
    ]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Judge quality report: accuracy and Cohen's kappa against the human majority (with "
        "bootstrap intervals), calibration of p_a, position consistency, self-preference split."
    )

    def add_base_argument(self, parser, *args, **kwargs):
        # --version is the judge version here, not Django's version flag.
        if "--version" in args:
            return
        super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--judge", required=True, help="Judge name.")
        parser.add_argument(
            "--version",
            dest="judge_version",
            help="Judge version (default: the judge's most recent label per comparison).",
        )
        parser.add_argument(
            "--family",
            help="The judge's model family, matched in model_a / model_b for the "
            "self-preference split (case-insensitive substring).",
        )
        parser.add_argument("--json", action="store_true", help="Print every figure as JSON.")
        parser.add_argument("--plot", metavar="FILE.png", help="Write the reliability diagram.")
        parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default 0).")
        parser.add_argument(
            "--bootstrap",
            type=int,
            default=1000,
            help="Bootstrap resamples (default 1000; 0: no intervals).",
        )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        if opts["bootstrap"] < 0:
            raise CommandError("--bootstrap must be 0 or more")
        try:
            report = judge_report(
                project=project,
                judge_name=opts["judge"],
                judge_version=opts["judge_version"],
                judge_family=opts["family"],
                seed=opts["seed"],
                n_bootstrap=opts["bootstrap"],
            )
        except JudgeReportError as exc:
            raise CommandError(str(exc)) from exc
        if opts["plot"]:
            from scoring.report import reliability_plot_png

            Path(opts["plot"]).write_bytes(reliability_plot_png(report))
            self.stderr.write(f"wrote the reliability diagram to {opts['plot']}")
        if opts["json"]:
            self.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            self.stdout.write(report_table(report))
