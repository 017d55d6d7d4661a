import sys

from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from scoring.judging.runs import (
    JudgeRunActive,
    judge_demo,
    judge_run_execute,
    judge_run_resume,
    judge_run_start,
)
from scoring.models import Judge, JudgeRun


class Command(BaseCommand):
    help = (
        "Label a project's comparisons with an LM judge (both shown orders, scored). By default "
        "the run is queued for a GPU worker; --sync runs it here with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--judge",
            help="Judge name (default: the project's primary judge, else the offline demo judge).",
        )
        parser.add_argument("--limit", type=int, help="Label at most the first N comparisons.")
        parser.add_argument("--sync", action="store_true", help="Run in this process.")
        parser.add_argument("--resume", type=int, metavar="RUN", help="Resume a failed run.")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        try:
            if opts["resume"]:
                run = judge_run_resume(run_id=opts["resume"], enqueue=not opts["sync"])
            else:
                run = judge_run_start(
                    project=project,
                    judge=self._judge(project, opts["judge"]),
                    limit=opts["limit"],
                    enqueue=not opts["sync"],
                )
        except JudgeRunActive as exc:
            raise CommandError(str(exc)) from None
        if not opts["sync"]:
            self.stdout.write(
                f"queued judge run #{run.pk} for {run.judge.name}@{run.judge_version}"
            )
            return
        run = judge_run_execute(run_id=run.pk, on_progress=self._progress)
        self.stderr.write("")
        if run.status != JudgeRun.Status.SUCCEEDED:
            raise CommandError(f"judge run #{run.pk} {run.status}: {run.error}")
        self.stdout.write(
            f"judge run #{run.pk}: {run.done}/{run.total} comparisons labelled by "
            f"{run.judge.name}@{run.judge_version} ({run.pairs_per_second or 0:.2f} pairs/s)"
        )

    def _judge(self, project: Project, name: str | None) -> Judge:
        name = name or project.primary_judge
        if not name:
            return judge_demo()
        judge = Judge.objects.filter(name=name).first()
        if judge is None:
            raise CommandError(
                f"no judge named {name!r}; create it in the admin (Scoring > Judges) first"
            )
        return judge

    def _progress(self, run: JudgeRun) -> None:
        width = 30
        filled = int(width * run.done / run.total) if run.total else width
        eta = run.eta_seconds
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {run.done}/{run.total} "
            f"{run.pairs_per_second or 0:.2f} pairs/s"
            + (f", about {eta:.0f}s left" if eta is not None else "")
        )
        sys.stderr.flush()
