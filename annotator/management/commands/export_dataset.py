import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.dataio.exporter import EXPORT_KINDS, dataset_export_lines
from annotator.models import Project


class Command(BaseCommand):
    help = "Stream a project's dataset as JSON Lines (full: every label; trl: chosen/rejected)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", choices=EXPORT_KINDS, default="full")
        parser.add_argument("--output", help="Output file (default: standard output).")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        started = time.perf_counter()
        rows = 0
        chunks = dataset_export_lines(project=project, kind=opts["format"])
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
