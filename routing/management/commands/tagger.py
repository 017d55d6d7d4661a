"""`manage.py tagger`: configure an LM tagger, name it as projects' tagger, and tag now."""

import orjson
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.features import features_compute
from routing.models import Tagger
from routing.services import project_tagger_set, tagger_save
from routing.tagging import DIMENSIONS

OPTIONS = {
    # option dest -> model field
    "backend": "backend",
    "model_path": "model_path",
    "gguf_file": "gguf_file",
    "base_url": "base_url",
    "model_name": "model_name",
    "api_key_env": "api_key_env",
    "concurrency": "concurrency",
    "timeout": "timeout_s",
    "batch_size": "batch_size",
    "device": "device",
    "dtype": "dtype",
}


class Command(BaseCommand):
    help = (
        "Create or update the LM tagger NAME (options not given keep their value; a new tagger "
        "starts from the defaults: hf-local with the demo SmolLM2, every dimension), name it as "
        "the tagger of the --project(s) given, and with --run compute those projects' features "
        "and tags now. Tags are stored next to the metadata tags as 'dimension=value'; changing "
        "the model, prompts or dimensions changes the feature-set version, so rows are redone."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--backend", choices=Tagger.Backend.values)
        parser.add_argument("--model-path", help="hf-local: model directory (empty: SmolLM2)")
        parser.add_argument("--gguf-file")
        parser.add_argument("--base-url", help="openai-compatible: e.g. http://gpu-host:8000/v1")
        parser.add_argument("--model-name", help="openai-compatible: the served model's name")
        parser.add_argument("--api-key-env", help="environment variable holding the API key")
        parser.add_argument("--concurrency", type=int, help="openai-compatible: in flight")
        parser.add_argument("--timeout", type=float, help="openai-compatible: seconds a request")
        parser.add_argument("--no-json-mode", action="store_true", help="no response_format")
        parser.add_argument("--batch-size", type=int, help="hf-local: sequences per pass")
        parser.add_argument("--device")
        parser.add_argument("--dtype")
        parser.add_argument(
            "--dimensions",
            help=f"comma-separated, from: {', '.join(DIMENSIONS)} (default: all)",
        )
        parser.add_argument(
            "--project", action="append", default=[], help="a project slug (repeatable)"
        )
        parser.add_argument("--run", action="store_true", help="compute the projects' tags now")
        parser.add_argument(
            "--recompute", action="store_true", help="with --run: recompute current rows too"
        )

    def handle(self, *args, **options):
        projects = []
        for slug in options["project"]:
            try:
                projects.append(Project.objects.get(slug=slug))
            except Project.DoesNotExist:
                raise CommandError(f"no project {slug!r}") from None
        tagger = Tagger.objects.filter(name=options["name"]).first() or Tagger(name=options["name"])
        for option, name in OPTIONS.items():
            if options[option] is not None:
                setattr(tagger, name, options[option])
        if options["no_json_mode"]:
            tagger.json_mode = False
        if options["dimensions"] is not None:
            tagger.dimensions = [d.strip() for d in options["dimensions"].split(",") if d.strip()]
        try:
            tagger = tagger_save(tagger=tagger)
        except ValidationError as exc:
            raise CommandError(f"tagger {tagger.name!r}: {exc}") from None
        result = {"tagger": tagger.name, "version": tagger.version, "projects": {}}
        for project in projects:
            project_tagger_set(project=project, tagger=tagger)
            entry = {}
            if options["run"]:
                done = features_compute(project=project, recompute=options["recompute"])
                entry = {
                    "features_computed": done.computed,
                    "feature_version": done.version,
                    "unknown_tags": done.unknown,
                }
            result["projects"][project.slug] = entry
        self.stdout.write(orjson.dumps(result).decode())
