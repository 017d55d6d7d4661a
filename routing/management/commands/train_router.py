"""`manage.py train_router`: fit a router prior on labelled projects and store it as a new
version (routing.priors), for live policies' first rounds."""

import numpy as np
import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.online import prior_fit
from routing.priors import prior_save
from routing.problem import RoutingProblem, problem_build
from routing.router import TRANSFERABLE_COLUMNS, bought_lm_wrong
from routing.selectors import routing_inputs


class Command(BaseCommand):
    help = (
        "Fit a router prior (P(LM label wrong)) on the human- and LM-labelled comparisons of "
        "other projects, on the features that mean the same across datasets ("
        + ", ".join(TRANSFERABLE_COLUMNS)
        + "), and store it under --output as a new version with its cross-validated metrics. "
        "A policy uses it with `routing_policy --prior NAME`. Prints JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-projects", required=True, help="comma-separated project slugs to learn from"
        )
        parser.add_argument("--output", required=True, help="the prior's name")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        name = options["output"].strip()
        if not name or len(name) > 100:
            raise CommandError("--output: a name of 1 to 100 characters")
        slugs = [s.strip() for s in options["from_projects"].split(",") if s.strip()]
        if not slugs:
            raise CommandError("--from-projects: at least one project slug")
        projects = _projects(slugs)
        problems, versions = [], {}
        for project in projects:
            problem, versions[project.slug] = _problem(project, seed=options["seed"])
            problems.append(problem)
        model, metrics = prior_fit(problems, seed=options["seed"])
        prior = prior_save(
            name=name,
            model=model,
            source_projects=projects,
            feature_versions=versions,
            metrics=metrics,
        )
        self.stdout.write(
            orjson.dumps(
                {
                    "name": prior.name,
                    "version": prior.version,
                    "source_projects": prior.source_projects,
                    "columns": prior.columns,
                    "metrics": prior.metrics,
                }
            ).decode()
        )


def _projects(slugs: list[str]) -> list[Project]:
    found = {p.slug: p for p in Project.objects.filter(slug__in=slugs)}
    unknown = [s for s in slugs if s not in found]
    if unknown:
        raise CommandError(f"--from-projects: no project {', '.join(map(repr, unknown))}")
    return [found[s] for s in dict.fromkeys(slugs)]


def _problem(project: Project, *, seed: int) -> tuple[RoutingProblem, str]:
    """The project as a routing problem, refused where it has nothing to teach: no LM label, no
    human label on a comparison the judge decided, or text features not computed."""
    data = routing_inputs(project)
    slug = project.slug
    if not data.primary_judge:
        raise CommandError(
            f"project {slug!r} has no LM labels: import them or run a judge on it first"
        )
    if data.missing_features:
        raise CommandError(
            f"project {slug!r}: {data.missing_features} comparisons have no text features of "
            f"version {data.feature_version}; compute them with "
            f"`manage.py route --project {slug} --features-only`"
        )
    if not data.human_labelled.any():
        raise CommandError(f"project {slug!r} has no human labels to learn from")
    problem = problem_build(data.inputs, seed=seed)
    learnable = ~np.isnan(bought_lm_wrong(problem)) & ~problem.lm_undecided
    if not learnable.any():
        raise CommandError(
            f"project {slug!r} has no comparison with both a human A/B label and an LM label "
            "that chose a side: nothing to learn from"
        )
    return problem, data.feature_version
