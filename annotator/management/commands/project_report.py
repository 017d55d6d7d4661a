import unicodedata

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.analytics.report import N_BOOTSTRAP, project_report_refresh
from annotator.models import Project


class Command(BaseCommand):
    help = (
        "Compute a project's analytics report (agreement, annotator competence, leaderboard, "
        "distributions) here, store it as the page's cache and print it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--bootstrap", type=int, default=N_BOOTSTRAP, help="Bootstrap resamples (default 1000)."
        )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        if opts["bootstrap"] < 0:
            raise CommandError("--bootstrap must be 0 or more")
        row = project_report_refresh(project_id=project.pk, n_bootstrap=opts["bootstrap"])
        report = row.report
        if opts["json"]:
            text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
            self.stdout.write(terminal_safe(text, json=True))
        else:
            self.stdout.write(_text(report))
        self.stderr.write(f"report of {project.slug} computed in {row.compute_seconds:.3f}s")


def _escaped(char: str, *, json: bool) -> str:
    if unicodedata.category(char) not in ("Cc", "Cf") or char == "\n":
        return char
    code = ord(char)
    if code < 0x100 and not json:
        return f"\\x{code:02x}"
    # UTF-16 units, as JSON writes any character (a pair beyond U+FFFF).
    units = char.encode("utf-16-be")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def terminal_safe(text: str, *, json: bool = False) -> str:
    """`text` with its control and format characters written as escapes (\\x1b, \\u202e):
    names come from imported data, and an ESC sequence in a model or annotator name would
    otherwise drive the reader's terminal. JSON keeps valid (\\u001b inside its strings)."""
    return "".join(_escaped(char, json=json) for char in text)


def _estimate(value: dict | None) -> str:
    if not value or value.get("value") is None:
        return "-"
    ci = value.get("ci")
    return f"{value['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _text(report: dict) -> str:
    lines = [
        f"{report['n_comparisons']} comparisons, {report['n_human_labels']} human labels by "
        f"{report['n_annotators']} annotators, {report['n_lm_labels']} LM labels",
        "",
        "Human-human agreement (95% bootstrap CI)",
    ]
    for aspect, a in report["agreement"].items():
        lines.append(
            f"  {aspect:<9} n={a['n_units']:<7} alpha ordinal {_estimate(a.get('alpha_ordinal'))}"
            f"  alpha nominal {_estimate(a['alpha_nominal'])}"
            f"  Fleiss {_estimate(a['fleiss_kappa'])}"
            f"  pairwise {_estimate(a['pairwise'])}"
        )
    if report["judges"]:
        lines += ["", "LM judges next to humans (same comparisons)"]
    for j in report["judges"]:
        lines.append(
            f"  {j['judge']:<20} n={j['n_units']:<7} agreement judge-human "
            f"{_estimate(j['judge_human']['agreement'])} vs human-human "
            f"{_estimate(j['human_human']['agreement'])}; kappa "
            f"{_estimate(j['judge_human']['kappa'])} vs {_estimate(j['human_human']['kappa'])}"
        )
    for source, board in report["leaderboard"].items():
        if not board["models"]:
            continue
        lines += [
            "",
            f"Leaderboard ({source} labels, Davidson ties, {board['n_comparisons']} comparisons)",
        ]
        for m in board["models"]:
            ci = m["score_ci"]
            interval = f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""
            lines.append(f"  {m['rank']:>3}. {m['model']:<30} {m['score']:7.0f}{interval}")
    flagged = [a for a in report["competence"]["annotators"] if a["flags"]]
    lines += ["", f"Annotators flagged: {len(flagged)} of {report['n_annotators']}"]
    for a in flagged:
        lines.append(f"  {a['annotator']}: {'; '.join(a['flags'])}")
    return "\n".join(terminal_safe(line) for line in lines)
