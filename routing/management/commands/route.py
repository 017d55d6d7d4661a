"""`manage.py route`: route a project's comparisons between humans and the LM judge."""

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.features import features_compute
from routing.models import RoutingRun
from routing.services import Budget, RoutingError, routing_run_create
from routing.strategies import STRATEGIES


class Command(BaseCommand):
    help = (
        "Route a project's comparisons under a human budget (a fraction such as 0.25 or 25%, or "
        "a count of comparisons such as 300). Comparisons with human labels stay human. Writes "
        "a routing run with one append-only decision per comparison and sets each "
        "comparison's route. Missing text features (and LM tags, when the project has a tagger: "
        "see `manage.py tagger`) are computed first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--strategy", choices=list(STRATEGIES))
        parser.add_argument("--budget", help="fraction (0.25, 25%%) or count of comparisons (300)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--primary-judge", default=None, help="default: the project's")
        parser.add_argument(
            "--features-only", action="store_true", help="compute missing features, route nothing"
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="with --features-only: queue the computation on a Celery worker",
        )
        parser.add_argument(
            "--recompute-features", action="store_true", help="recompute stored features too"
        )

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project {options['project']!r}") from None
        if options["features_only"]:
            self._features_only(project, options)
            return
        if not options["strategy"]:
            raise CommandError("--strategy is required (or --features-only)")
        budget = _budget(options["budget"])
        if STRATEGIES[options["strategy"]].learns:
            done = features_compute(project=project, recompute=options["recompute_features"])
            if done.computed:
                self.stderr.write(f"computed features of {done.computed} comparisons")
        try:
            run = routing_run_create(
                project=project,
                strategy=options["strategy"],
                budget=budget,
                primary_judge=options["primary_judge"],
                seed=options["seed"],
            )
        except RoutingError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(orjson.dumps({"run": run.pk, **_run_figures(run)}).decode())

    def _features_only(self, project: Project, options) -> None:
        """Compute the missing features (queued on a worker with --background)."""
        if options["background"]:
            from routing.tasks import features_compute_task

            result = features_compute_task.delay(project.pk, options["recompute_features"])
            self.stdout.write(orjson.dumps({"task": result.id, "status": "queued"}).decode())
            return
        done = features_compute(project=project, recompute=options["recompute_features"])
        self.stdout.write(
            orjson.dumps(
                {
                    "features_computed": done.computed,
                    "feature_version": done.version,
                    "tagger": done.tagger or None,
                    "unknown_tags": done.unknown,
                }
            ).decode()
        )


def _budget(text: str | None) -> Budget | None:
    if text is None:
        return None
    try:
        return Budget.parse(text)
    except RoutingError as exc:
        raise CommandError(f"--budget: {exc}") from None


def _run_figures(run: RoutingRun) -> dict:
    return {
        "strategy": run.strategy,
        "strategy_version": run.strategy_version,
        "budget": run.budget,
        "total": run.total,
        "human": run.human,
        "lm": run.lm,
        "kept_human": run.kept_human,
        "human_label_cost": run.human_label_cost,
        "expected_label_accuracy": run.expected_label_accuracy,
    }
