import sys
import time
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.dataio.formats import FORMAT_CHOICES, READ_ERRORS, ReadOptions
from annotator.dataio.formats.pairing import PAIRINGS
from annotator.dataio.importer import ImportFailed, comparisons_import
from annotator.dataio.jobs import import_job_create
from annotator.models import Project
from annotator.services import project_create


class Command(BaseCommand):
    help = (
        "Import comparisons (and their labels) from a JSON Lines file, all or nothing. "
        "Prints a one-line JSON summary last."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Input file (gzip allowed), or - for standard input.")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--format",
            choices=FORMAT_CHOICES,
            default="native",
            help="The input's format (README, 'Import formats'); auto: told from the first "
            "record's keys, and printed.",
        )
        parser.add_argument(
            "--create-project", action="store_true", help="Create the project if it is missing."
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="Rewrite existing comparisons whose content differs, instead of failing.",
        )
        parser.add_argument(
            "--label-source",
            default="human",
            help="trl/hh-rlhf and others: store the dataset's preference as a human label "
            "(default, named after the file) or as an LM label with lm:JUDGE (ultrafeedback/"
            "nectar: renames their GPT-4 judge).",
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the import for a Celery worker and print the job id "
            "(follow it with `import_status ID`).",
        )
        parser.add_argument(
            "--with-evaluators",
            action="store_true",
            help="llmbar: also import evaluators/<JUDGE>/<PROMPT>/result.json as LM labels.",
        )
        parser.add_argument(
            "--pairing",
            choices=PAIRINGS,
            default="best-vs-each",
            help="ultrafeedback/helpsteer2/nectar (several rated responses per prompt): which "
            "pairs become comparisons (README, 'Import formats').",
        )
        parser.add_argument(
            "--pairing-seed",
            type=int,
            default=0,
            help="The seed of --pairing best-vs-random's draw (the same seed, the same pairs).",
        )

    def handle(self, *args, **opts):
        slug = opts["project"]
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            if not opts["create_project"]:
                raise CommandError(f"project {slug!r} does not exist (pass --create-project)")
            project = project_create(slug=slug)

        path = None if opts["file"] == "-" else Path(opts["file"])
        if path is not None and not path.is_file():
            raise CommandError(f"{path}: no such file")
        options = ReadOptions(
            label_name=path.name if path else "stdin",
            lm_judge=_lm_judge(opts["label_source"]),
            with_evaluators=opts["with_evaluators"],
            pairing=opts["pairing"],
            pairing_seed=opts["pairing_seed"],
        )
        if opts["background"]:
            return self._queue(project, path, opts, options)
        started = time.perf_counter()
        name = "<stdin>" if path is None else str(path)
        try:
            if path is None:
                summary = self._import(project, sys.stdin.buffer, name, opts, options, None)
            else:
                with path.open("rb") as stream:
                    summary = self._import(project, stream, name, opts, options, path)
        except READ_ERRORS as exc:  # a truncated or corrupt gzip stream
            raise CommandError(
                f"{name}: the file cannot be read: {exc}; nothing was written"
            ) from None
        except ImportFailed as failure:
            for error in failure.errors:
                self.stderr.write(str(error))
            hidden = failure.error_count - len(failure.errors)
            if hidden > 0:
                self.stderr.write(f"... and {hidden} more errors")
            raise CommandError(
                f"import failed with {failure.error_count} errors; nothing was written"
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        seconds = time.perf_counter() - started
        if opts["format"] == "auto":
            self.stderr.write(f"format: {summary.format} (told from the first record's keys)")
        self.stderr.write(f"imported {summary.created} comparisons in {seconds:.3f}s")
        self.stdout.write(orjson.dumps(summary.as_dict()).decode())

    def _queue(self, project, path, opts, options) -> None:
        if path is None:
            raise CommandError("--background needs a file, not standard input")
        try:
            with path.open("rb") as stream:
                job = import_job_create(
                    project=project,
                    stream=stream,
                    source_name=str(path),
                    fmt=opts["format"],
                    update=opts["update"],
                    options=options,
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(orjson.dumps({"job": job.pk, "status": job.status}).decode())

    def _import(self, project, stream, name, opts, options, path):
        return comparisons_import(
            project=project,
            stream=stream,
            source_name=name,
            fmt=opts["format"],
            update=opts["update"],
            options=options,
            path=path,
        )


def _lm_judge(label_source: str) -> str | None:
    if label_source == "human":
        return None
    if label_source.startswith("lm:") and label_source[3:].strip():
        return label_source[3:].strip()
    raise CommandError(f"--label-source must be 'human' or 'lm:JUDGE', not {label_source!r}")
