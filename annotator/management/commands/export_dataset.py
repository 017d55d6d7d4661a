import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.analytics.report import project_posteriors, project_report_refresh
from annotator.dataio.export import EXPORT_FORMATS, dataset_export_lines
from annotator.models import Project


class Command(BaseCommand):
    help = "Stream a project's dataset as JSON Lines (full: every label; trl: chosen/rejected)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="full")
        parser.add_argument("--output", help="Output file (default: standard output).")
        parser.add_argument(
            "--with-confidence",
            action="store_true",
            help="Add each pair's Dawid-Skene `posterior` and `label_confidence` (from the "
            "project's analytics, recomputed first when labels changed since).",
        )
        parser.add_argument(
            "--min-confidence",
            type=float,
            help="Keep only pairs whose label_confidence is known and at least this (0-1).",
        )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        minimum = opts["min_confidence"]
        if minimum is not None and not 0.0 <= minimum <= 1.0:
            raise CommandError(f"--min-confidence must be between 0 and 1, not {minimum}")
        with_confidence = opts["with_confidence"] or minimum is not None
        if with_confidence:
            _, stale = project_posteriors(project=project)
            if stale:
                self.stderr.write("labels changed since the last analytics report: recomputing")
                project_report_refresh(project_id=project.pk)
        started = time.perf_counter()
        rows = 0
        chunks = dataset_export_lines(
            project=project,
            format=opts["format"],
            with_confidence=with_confidence,
            min_confidence=minimum,
        )
        if opts["output"]:
            target = Path(opts["output"])
            partial = target.with_name(target.name + ".partial")
            # Written beside the target and renamed at the end: a failed export leaves no
            # truncated file that looks complete.
            with partial.open("wb") as out:
                for chunk in chunks:
                    rows += chunk.count(b"\n")
                    out.write(chunk)
            partial.replace(target)
        else:
            stream = self.stdout._out
            binary = getattr(stream, "buffer", None)
            for chunk in chunks:
                rows += chunk.count(b"\n")
                if binary is not None:
                    binary.write(chunk)
                else:  # a text stream, e.g. when called from code with stdout=StringIO()
                    stream.write(chunk.decode())
            stream.flush()
        seconds = time.perf_counter() - started
        self.stderr.write(f"exported {rows} rows ({opts['format']}) in {seconds:.3f}s")
