"""`manage.py routing_policy`: a project's live routing policy: settings, start, pause, one
round, and its figures (the same as the project page's panel and the API)."""

from dataclasses import asdict

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.live import PolicyError, policy_round, policy_save, policy_state_set
from routing.models import BudgetUnit, RoutingPolicy
from routing.priors import PriorError
from routing.selectors import POLICY_STRATEGIES, policy_figures, prior_checked

# Option name -> policy setting (routing.live POLICY_FIELDS).
SETTINGS = {
    "strategy": "strategy",
    "budget": "budget",
    "unit": "budget_unit",
    "seed_size": "seed_size",
    "seed_tag": "seed_tag",
    "batch_size": "batch_size",
    "refit_every": "refit_every",
    "prior_threshold": "prior_threshold",
    "max_labels_per_item": "max_labels_per_item",
}


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "Create or change a project's live routing policy (settings given), start or pause it, "
        "run one round now (--round), or show its figures (--show, the default): state, budget "
        "spent / committed / left, rounds, the router's cross-validated AUC, the expected label "
        "accuracy. Prints JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--strategy", choices=POLICY_STRATEGIES)
        parser.add_argument("--budget", type=_count, help="the total human budget, in --unit")
        parser.add_argument("--unit", choices=BudgetUnit.values, help="default: comparisons")
        parser.add_argument("--seed-size", type=_count, help="comparisons in the first round")
        parser.add_argument("--seed-tag", help="draw the seed stratified by this tag key")
        parser.add_argument("--batch-size", type=_count, help="comparisons per later round")
        parser.add_argument(
            "--refit-every", type=_count, help="refit after this many released comparisons complete"
        )
        prior = parser.add_mutually_exclusive_group()
        prior.add_argument("--prior", help="a router prior's name (manage.py train_router)")
        prior.add_argument("--no-prior", action="store_true", help="use no prior")
        parser.add_argument(
            "--prior-threshold", type=_count, help="own labelled comparisons before the prior goes"
        )
        parser.add_argument(
            "--max-labels-per-item", type=_count, help="adjudication cap (0: never ask for more)"
        )
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--start", action="store_true")
        action.add_argument("--pause", action="store_true")
        action.add_argument("--round", action="store_true", help="run one round now, here")
        action.add_argument("--show", action="store_true", help="print the figures (default)")

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project {options['project']!r}") from None
        settings = _settings(options)
        try:
            if settings:
                policy_save(project=project, **settings)
            if options["start"] or options["pause"]:
                policy_state_set(project=project, action="start" if options["start"] else "pause")
        except PolicyError as exc:
            raise CommandError(str(exc)) from None
        if options["round"]:
            self.stdout.write(orjson.dumps(_round(project)).decode())
            return
        figures = policy_figures(project)
        if figures is None:
            raise CommandError(
                f"project {project.slug!r} has no routing policy; create one with --budget N"
            )
        self.stdout.write(orjson.dumps(figures.as_dict()).decode())


def _settings(options) -> dict:
    """The policy settings the options give (None: not given)."""
    settings = {
        field: options[option] for option, field in SETTINGS.items() if options[option] is not None
    }
    if options["no_prior"]:
        settings["prior"] = None
    elif options["prior"] is not None:
        try:
            settings["prior"] = prior_checked(options["prior"])
        except PriorError as exc:
            raise CommandError(f"--prior: {exc}") from None
    return settings


def _round(project: Project) -> dict:
    """One round of the policy, run here (not on a worker)."""
    state = RoutingPolicy.objects.filter(project=project).values_list("state", flat=True).first()
    if state is None:
        raise CommandError(f"project {project.slug!r} has no routing policy")
    try:
        outcome = policy_round(project_id=project.pk)
    except Exception as exc:
        # The round recorded its error on the policy (shown by --show) and wrote nothing else.
        raise CommandError(f"the round failed: {type(exc).__name__}: {exc}") from exc
    if outcome is None:
        raise CommandError(f"no round: the policy is {state}, not running (start it: --start)")
    return asdict(outcome)
