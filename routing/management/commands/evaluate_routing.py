"""`manage.py evaluate_routing`: measure routing strategies on a project's labelled comparisons,
under the protocol a router is used with (docs/architecture.md, "Evaluating a router")."""

import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.evaluation import (
    PROTOCOLS,
    OnlineSettings,
    evaluate,
    format_table,
    plot,
    summary_table,
)
from routing.features import features_compute
from routing.problem import tag_strata
from routing.selectors import ProjectRouting, comparison_texts, routing_inputs
from routing.strategies import STRATEGIES, StrategyError


def parse_budgets(text: str) -> list[float]:
    try:
        budgets = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CommandError(
            f"--budgets: {text!r} is not a comma-separated list of numbers"
        ) from None
    bad = [b for b in budgets if not 0.0 <= b <= 1.0]
    if not budgets or bad:
        raise CommandError(f"--budgets: fractions between 0 and 1 expected, got {text!r}")
    return budgets


class Command(BaseCommand):
    help = (
        "Evaluate routing strategies (the protocol of docs/architecture.md, 'Evaluating a "
        "router'): buy one human label per comparison, score against the consensus of the "
        "others (or the single gold label), report label accuracy and routing efficiency RE(b) "
        "per budget and seed. --protocol online (the default) replays the live loop: a seed, "
        "then rounds chosen by a router refitted on what it has bought; cross-fit scores each "
        "comparison by a router fitted on the other folds' labels (an upper reference); "
        "transfer routes with a stored prior (--prior) and no label of this project. Computes "
        "missing text features first. Writes DIR/results.json and DIR/routing.png and prints "
        "a table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--strategies",
            default="all_lm,random,judge_confidence,learned,hyper_topk,hyper_simulated,all_human",
            help=f"comma-separated, of: {', '.join(STRATEGIES)}",
        )
        parser.add_argument(
            "--protocol",
            default="online",
            help=f"comma-separated, of: {', '.join(PROTOCOLS)} (the HyPER strategies: "
            "cross-fit only)",
        )
        parser.add_argument("--budgets", default="0,0.1,0.2,0.25,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
        parser.add_argument("--seeds", type=int, default=5)
        parser.add_argument("--folds", type=int, default=settings.ROUTING_FOLDS)
        parser.add_argument("--primary-judge", default=None, help="default: the project's")
        parser.add_argument("--ppm-candidates", type=int, default=settings.ROUTING_PPM_CANDIDATES)
        parser.add_argument(
            "--simulated-candidates", type=int, default=settings.ROUTING_SIMULATED_CANDIDATES
        )
        self._online_arguments(parser)
        parser.add_argument(
            "--train-rm",
            action="store_true",
            help="also train a reward model (MiniLM) on each routed label set and report its "
            "accuracy on held-out human labels (expensive: one training per row)",
        )
        parser.add_argument("--rm-epochs", type=int, default=1)
        parser.add_argument("--rm-lr", type=float, default=2e-5)
        parser.add_argument(
            "--output", required=True, help="directory for results.json, routing.png"
        )

    def _online_arguments(self, parser) -> None:
        defaults = OnlineSettings()
        parser.add_argument(
            "--seed-fraction",
            type=float,
            default=defaults.seed_fraction,
            help="online: the seed round's share of the comparisons (counts against the budget)",
        )
        parser.add_argument(
            "--batch-fraction",
            type=float,
            default=defaults.batch_fraction,
            help="online: each later round's share of the comparisons",
        )
        parser.add_argument(
            "--refit-every",
            type=int,
            default=None,
            help="online: refit the router after this many bought comparisons (default: a round)",
        )
        parser.add_argument(
            "--seed-tag",
            default="",
            help="online: draw the seed stratified by this tag key (e.g. category)",
        )
        parser.add_argument(
            "--prior",
            default="",
            help="a stored router prior (manage.py train_router): the transfer protocol's "
            "router, and the online protocol's until the project's own labels take over",
        )
        parser.add_argument("--prior-threshold", type=int, default=defaults.prior_threshold)

    def handle(self, *args, **options):
        project = _project(options["project"])
        strategies = _strategies(options["strategies"])
        protocols = _protocols(options["protocol"])
        budgets = parse_budgets(options["budgets"])
        if options["seeds"] < 1 or options["folds"] < 2:
            raise CommandError("--seeds must be at least 1 and --folds at least 2")
        data = self._inputs(project, options)
        online = _online_settings(options, data, protocols)
        started = time.perf_counter()
        try:
            result = evaluate(
                data.inputs,
                strategies=strategies,
                budgets=budgets,
                seeds=options["seeds"],
                folds=options["folds"],
                ppm_candidates=options["ppm_candidates"],
                simulated_candidates=options["simulated_candidates"],
                rm_accuracy=_rm_accuracy(options, data.ids),
                protocols=protocols,
                online=online,
            )
        except (StrategyError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"])
        output.mkdir(parents=True, exist_ok=True)
        (output / "results.json").write_bytes(orjson.dumps(result.rows, option=orjson.OPT_INDENT_2))
        table = summary_table(result.rows)
        plot(
            table,
            output / "routing.png",
            title=f"{project.slug}: primary judge {data.primary_judge}, n={result.n}",
        )
        self._summary_write(project, data.primary_judge, result, table, options, started)
        self.stdout.write(f"wrote {output / 'results.json'} and {output / 'routing.png'}")

    def _inputs(self, project: Project, options) -> ProjectRouting:
        """The project's routing inputs, its missing text features computed first; refused
        without an LM label to route on."""
        data = routing_inputs(project, primary_judge=options["primary_judge"])
        if data.missing_features:
            self.stderr.write(
                f"computing the text features of {data.missing_features} comparisons "
                f"(version {data.feature_version})"
            )
            with _progress_to(self.stderr):
                features_compute(project=project)
            data = routing_inputs(project, primary_judge=options["primary_judge"])
        if not data.primary_judge or np.isnan(data.inputs.p_a).all():
            raise CommandError(
                f"project {project.slug!r} has no LM label to route on"
                + (f" from judge {data.primary_judge!r}" if data.primary_judge else "")
                + ": import LM labels or run a judge on it first"
            )
        return data

    def _summary_write(self, project, primary_judge, result, table, options, started) -> None:
        self.stdout.write(
            f"project {project.slug}: {result.n} comparisons with a binary gold, primary judge "
            f"{primary_judge}; all-LM accuracy {result.acc0:.3f}, all-human "
            f"{result.acc1:.3f}; {options['seeds']} seeds, {time.perf_counter() - started:.1f} s"
        )
        self.stdout.write("RE(b) = (acc(b) - acc(0)) / (acc(1) - acc(0))")
        self.stdout.write(format_table(table))
        if result.skipped:
            self.stdout.write(
                "not measured: "
                + ", ".join(f"{s} under {p}" for p, s in result.skipped)
                + " (the HyPER strategies need the humans' own accuracy, which one bought label "
                "per comparison cannot tell: cross-fit only)"
            )
        if result.ppm_spearman:
            self.stdout.write(
                "PPM cross-validated Spearman on its candidates (seed 0): "
                + ", ".join(f"{k} {v:.3f}" for k, v in result.ppm_spearman.items())
                + " (paper, Table 2: quadratic 0.61, linear 0.41)"
            )


@contextmanager
def _progress_to(stream):
    """features_compute's progress lines (it logs one per chunk) shown on `stream`."""
    logger = logging.getLogger("routing.features")
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _online_settings(options, data: ProjectRouting, protocols: list[str]) -> OnlineSettings:
    fractions = (options["seed_fraction"], options["batch_fraction"])
    if not 0.0 <= fractions[0] <= 1.0 or not 0.0 < fractions[1] <= 1.0:
        raise CommandError("--seed-fraction must be in [0, 1] and --batch-fraction in (0, 1]")
    if options["refit_every"] is not None and options["refit_every"] < 1:
        raise CommandError("--refit-every must be at least 1")
    if "transfer" in protocols and not options["prior"]:
        raise CommandError("--protocol transfer routes with a prior: name one with --prior")
    return OnlineSettings(
        seed_fraction=fractions[0],
        batch_fraction=fractions[1],
        refit_every=options["refit_every"],
        prior=_prior(options["prior"]),
        prior_threshold=options["prior_threshold"],
        strata=tag_strata(data.inputs, options["seed_tag"]) if options["seed_tag"] else None,
    )


def _prior(name: str):
    """The stored prior `name` (routing.priors), None without a name."""
    if not name:
        return None
    from routing.priors import prior_load

    try:
        return prior_load(name)
    except ValueError as exc:
        raise CommandError(f"--prior: {exc}") from None


def _project(slug: str) -> Project:
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist:
        raise CommandError(f"no project {slug!r}") from None


def _strategies(text: str) -> list[str]:
    strategies = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise CommandError(
            f"--strategies: unknown {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(STRATEGIES)}"
        )
    return strategies


def _protocols(text: str) -> list[str]:
    protocols = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise CommandError(
            f"--protocol: unknown {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(PROTOCOLS)}"
        )
    return list(dict.fromkeys(protocols))


def _rm_accuracy(options, ids):
    """With --train-rm: the function that trains and measures a reward model per routed label
    set (routing.reward_eval); else None."""
    if not options["train_rm"]:
        return None
    from routing.reward_eval import rm_accuracy_function

    texts = comparison_texts(ids.tolist())
    return rm_accuracy_function(texts, epochs=options["rm_epochs"], lr=options["rm_lr"])
