import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from annotator.analytics.report import project_posteriors, project_report_refresh
from annotator.api.filters import ComparisonFilter
from annotator.dataio.export import (
    EXPORT_FORMATS,
    LINE_FORMATS,
    ExportOptions,
    dataset_export_chunks,
    dataset_export_directory,
    export_options_check,
)
from annotator.dataio.export.pairs import CONVERSATIONAL, SOURCES
from annotator.models import Comparison, Project

# The REST API's comparison filters, as flags (--has-human-labels true, ...).
FILTERS = (
    "route",
    "external_id",
    "has_human_labels",
    "has_lm_label",
    "judge",
    "agreement",
    "created_after",
    "created_before",
)


class Command(BaseCommand):
    help = (
        "Export a project's dataset: JSON Lines (full: every label; trl: chosen/rejected; "
        "multipref: MultiPref's rows), a Parquet file (parquet) or a Hugging Face dataset "
        "directory (hf)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="full")
        parser.add_argument(
            "--output",
            help="Output file (default: standard output); for hf a new directory. "
            "Required for parquet and hf.",
        )
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
        parser.add_argument(
            "--min-agreement",
            type=float,
            help="Keep only comparisons whose human votes agree at least this much: the share "
            "of votes for their most common choice (0-1); comparisons without votes are left out.",
        )
        parser.add_argument(
            "--source",
            choices=SOURCES,
            help="trl/parquet/hf: the label that decides chosen/rejected: final (default: human "
            "majority, else the primary judge), human (majority only) or lm (the judge only).",
        )
        parser.add_argument(
            "--margin",
            action="store_true",
            help="trl/parquet/hf: a `margin` column for TRL's RewardTrainer from the label's "
            "strength (clearly 1.0, slightly 0.5, unknown 0.0).",
        )
        parser.add_argument(
            "--conversational",
            choices=CONVERSATIONAL,
            help="trl/parquet/hf: prompt/chosen/rejected as lists of messages: auto (default: "
            "when an exported comparison has messages), always (plain text as one user / "
            "assistant message) or never.",
        )
        parser.add_argument("--row-group-size", type=int, help="parquet/hf: rows per row group.")
        parser.add_argument("--shard-size", type=int, help="hf: comparisons per Parquet shard.")
        parser.add_argument("--license", help="hf: the card's licence (default: the project's).")
        for name in FILTERS:
            parser.add_argument(
                "--" + name.replace("_", "-"), help="As the REST API's filter of this name."
            )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"project {opts['project']!r} does not exist")
        export_format, output = opts["format"], opts["output"]
        options = _options(opts)
        try:
            export_options_check(export_format, options, spell=_flag)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if export_format not in LINE_FORMATS and not output:
            raise CommandError(f"--output is required for the {export_format} export")
        comparisons = _comparisons_filtered(project, opts)
        if options.with_confidence:
            _, stale = project_posteriors(project=project)
            if stale:
                self.stderr.write("labels changed since the last analytics report: recomputing")
                project_report_refresh(project_id=project.pk)
        started = time.perf_counter()
        try:
            done = self._export(project, export_format, options, comparisons, output)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        seconds = time.perf_counter() - started
        self.stderr.write(f"exported {done} ({export_format}) in {seconds:.3f}s")

    def _export(self, project, export_format, options, comparisons, output) -> str:
        """Write the export; what was written, in words."""
        if export_format == "hf":
            summary = dataset_export_directory(
                project=project, path=Path(output), options=options, comparisons=comparisons
            )
            return f"{summary.stats.rows} rows in {summary.shards} shards to {summary.path}"
        chunks = dataset_export_chunks(
            project=project, format=export_format, options=options, comparisons=comparisons
        )
        if output:
            size, rows = _file_write(Path(output), chunks)
        else:
            size, rows = self._stdout_write(chunks)
        if export_format in LINE_FORMATS:
            return f"{rows} rows"
        return f"{size} bytes"

    def _stdout_write(self, chunks) -> tuple[int, int]:
        stream = self.stdout._out
        binary = getattr(stream, "buffer", None)
        size = rows = 0
        for chunk in chunks:
            size, rows = size + len(chunk), rows + chunk.count(b"\n")
            if binary is not None:
                binary.write(chunk)
            else:  # a text stream, e.g. when called from code with stdout=StringIO()
                stream.write(chunk.decode())
        stream.flush()
        return size, rows


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _options(opts: dict) -> ExportOptions:
    minimum = opts["min_confidence"]
    return ExportOptions(
        source=opts["source"],
        margin=opts["margin"],
        conversational=opts["conversational"],
        min_agreement=opts["min_agreement"],
        with_confidence=opts["with_confidence"] or minimum is not None,
        min_confidence=minimum,
        row_group_size=opts["row_group_size"],
        shard_size=opts["shard_size"],
        license=opts["license"],
    )


def _comparisons_filtered(project: Project, opts: dict):
    """The project's comparisons narrowed by the filter flags given, as the REST API does."""
    given = QueryDict(mutable=True)
    for name in FILTERS:
        if opts[name] is not None:
            given[name] = opts[name]
    filterset = ComparisonFilter(given, queryset=Comparison.objects.filter(project=project))
    if not filterset.is_valid():
        problems = "; ".join(
            f"{_flag(name)}: {' '.join(errors)}" for name, errors in filterset.errors.items()
        )
        raise CommandError(problems)
    return filterset.qs


def _file_write(target: Path, chunks) -> tuple[int, int]:
    """Write beside the target and rename at the end: a failed export leaves no truncated file
    that looks complete. (bytes, newlines) written."""
    partial = target.with_name(target.name + ".partial")
    size = rows = 0
    with partial.open("wb") as out:
        for chunk in chunks:
            size, rows = size + len(chunk), rows + chunk.count(b"\n")
            out.write(chunk)
    partial.replace(target)
    return size, rows
