import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.models import ImportJob


class Command(BaseCommand):
    help = "Show a background import job as JSON (status, summary, errors)."

    def add_arguments(self, parser):
        parser.add_argument(
            "job", type=int, help="Job id printed by import_comparisons --background."
        )

    def handle(self, *args, **opts):
        job = ImportJob.objects.select_related("project").filter(pk=opts["job"]).first()
        if job is None:
            raise CommandError(f"import job {opts['job']} does not exist")
        self.stdout.write(
            orjson.dumps(
                {
                    "job": job.pk,
                    "project": job.project.slug,
                    "source": job.source_name,
                    "format": job.format,
                    "status": job.status,
                    "summary": job.summary,
                    "error_count": job.error_count,
                    "errors": job.errors,
                    "created_at": job.created_at,
                    "started_at": job.started_at,
                    "finished_at": job.finished_at,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
