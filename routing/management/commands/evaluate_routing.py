"""`manage.py evaluate_routing`: measure routing strategies on a project's labelled comparisons."""

import time
from pathlib import Path

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from routing.evaluation import evaluate, format_table, plot, summary_table
from routing.selectors import comparison_texts, routing_inputs
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
        "per budget and seed. Writes DIR/results.json and DIR/routing.png and prints a table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--strategies",
            default="all_lm,random,judge_confidence,learned,hyper_topk,hyper_simulated,all_human",
            help=f"comma-separated, of: {', '.join(STRATEGIES)}",
        )
        parser.add_argument("--budgets", default="0,0.1,0.2,0.25,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
        parser.add_argument("--seeds", type=int, default=5)
        parser.add_argument("--folds", type=int, default=settings.ROUTING_FOLDS)
        parser.add_argument("--primary-judge", default=None, help="default: the project's")
        parser.add_argument("--ppm-candidates", type=int, default=settings.ROUTING_PPM_CANDIDATES)
        parser.add_argument(
            "--simulated-candidates", type=int, default=settings.ROUTING_SIMULATED_CANDIDATES
        )
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

    def handle(self, *args, **options):
        project = _project(options["project"])
        strategies = _strategies(options["strategies"])
        budgets = parse_budgets(options["budgets"])
        if options["seeds"] < 1 or options["folds"] < 2:
            raise CommandError("--seeds must be at least 1 and --folds at least 2")
        data = routing_inputs(project, primary_judge=options["primary_judge"])
        if not data.primary_judge:
            raise CommandError(f"project {project.slug!r} has no LM labels (no primary judge)")
        if data.missing_features:
            self.stderr.write(
                f"note: {data.missing_features} comparisons have no stored text features "
                "(run `manage.py route --features-only` first); their text features count as "
                "missing"
            )
        rm_accuracy = _rm_accuracy(options, data.ids)
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
                rm_accuracy=rm_accuracy,
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

    def _summary_write(self, project, primary_judge, result, table, options, started) -> None:
        self.stdout.write(
            f"project {project.slug}: {result.n} comparisons with a binary gold, primary judge "
            f"{primary_judge}; all-LM accuracy {result.acc0:.3f}, all-human "
            f"{result.acc1:.3f}; {options['seeds']} seeds, {time.perf_counter() - started:.1f} s"
        )
        self.stdout.write("RE(b) = (acc(b) - acc(0)) / (acc(1) - acc(0))")
        self.stdout.write(format_table(table))
        if result.ppm_spearman:
            self.stdout.write(
                "PPM cross-validated Spearman on its candidates (seed 0): "
                + ", ".join(f"{k} {v:.3f}" for k, v in result.ppm_spearman.items())
                + " (paper, Table 2: quadratic 0.61, linear 0.41)"
            )


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


def _rm_accuracy(options, ids):
    """With --train-rm: the function that trains and measures a reward model per routed label
    set (routing.reward_eval); else None."""
    if not options["train_rm"]:
        return None
    from routing.reward_eval import rm_accuracy_function

    texts = comparison_texts(ids.tolist())
    return rm_accuracy_function(texts, epochs=options["rm_epochs"], lr=options["rm_lr"])
