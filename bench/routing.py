"""Routing benchmark: how well each strategy routes LLMBar, and how fast routing runs.

Quality: every LLMBar subset pooled (Natural, the four Adversarial ones, and the Processed
MT-Bench, LLMEval^2 and FairEval: 885 pairs with a gold label and several judges' verdicts in
both orders), imported through `import_comparisons --format llmbar --with-evaluators` into a
fresh SQLite database, text features computed (`route --features-only`), then
`evaluate_routing --primary-judge ChatGPT` over budgets 0-1 and 5 seeds: its table, its plot
(routing.png) and results.json land in --output. Judge ties (the two orders disagree) are broken
at random, as the evaluation protocol does.

Speed, with precomputed features (no database): the real project's inputs resampled with
replacement to 1,000,000 comparisons, 2% of them human-labelled (what the learning strategies
train on); each strategy builds the problem (ranks, bins, targets) and routes the unlabelled
ones under a 25% budget. `hyper_simulated` the same on 100,000 comparisons with 500 candidates.

    python bench/routing.py [--quick] [--seeds 5] [--output DIR]

`--quick` (about a minute): the first 60 pairs of Natural, 2 seeds, 4 budgets, 100k / 20k
comparisons for speed, 100 candidates. Same output shape. The last line is one JSON object:
re_at_25 (strategy -> mean RE(0.25) over seeds), re_at_25_spread (strategy -> [min, max]),
worse_than_random (strategy -> budgets where its mean label accuracy falls below random's
lowest seed), route_1m_seconds (strategy -> seconds), hyper_simulated_100k_seconds,
all_lm_accuracy, ppm_spearman, n.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This script is named like the app it measures: the repository goes first on the path (and
# bench/ off it) so that `import routing` finds the app, not this file.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
DATA = ROOT.parent / "shared" / "data" / "LLMBar" / "Dataset"
SUBSETS = [
    "LLMBar/Natural",
    "LLMBar/Adversarial/GPTInst",
    "LLMBar/Adversarial/GPTOut",
    "LLMBar/Adversarial/Manual",
    "LLMBar/Adversarial/Neighbor",
    "Processed/MT-Bench",
    "Processed/LLMEval^2",
    "Processed/FairEval",
]
STRATEGIES = "all_lm,random,judge_confidence,learned,hyper_topk,hyper_simulated,all_human"
SPEED_STRATEGIES = ("random", "judge_confidence", "learned", "hyper_topk")
QUICK_RECORDS = 60


def sliced_copy(source: Path, target: Path, n: int) -> Path:
    """The first n records of an LLMBar subset and of each of its evaluators' results."""
    for path in [source / "dataset.json", *source.glob("evaluators/*/*/result.json")]:
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(json.loads(path.read_text())[:n]))
    return target


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {args[0]} failed")
    return result.stdout


def resample(inputs, n: int, labelled_share: float, seed: int):
    """`inputs` resampled with replacement to n comparisons; votes kept on a share of them."""
    from routing.problem import NONE, RoutingInputs

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, inputs.n, size=n)
    votes = inputs.votes[pick].copy()
    votes[rng.random(n) >= labelled_share] = NONE
    return RoutingInputs(
        text={k: v[pick] for k, v in inputs.text.items()},
        tag_codes=inputs.tag_codes[pick],
        tag_vocabulary=inputs.tag_vocabulary,
        p_a=inputs.p_a[pick],
        consistent=inputs.consistent[pick],
        truncated=inputs.truncated[pick],
        lm_choice=inputs.lm_choice[pick],
        others_agree=inputs.others_agree[pick],
        others_p_a=inputs.others_p_a[pick],
        votes=votes,
        other_choices={k: v[pick] for k, v in inputs.other_choices.items()},
    )


def time_route(inputs, strategy: str, budget_share: float, candidates_n: int) -> float:
    from routing.problem import problem_build
    from routing.strategies import STRATEGIES as REGISTRY
    from routing.strategies import StrategyOptions

    started = time.perf_counter()
    problem = problem_build(inputs, seed=0)
    labelled = (inputs.votes >= 0).any(axis=1)
    candidates = ~labelled
    budget = round(budget_share * inputs.n)
    options = StrategyOptions(seed=0, simulated_candidates=candidates_n)
    routing = REGISTRY[strategy].route(problem, candidates, budget, options)
    elapsed = time.perf_counter() - started
    assert int(routing.human.sum()) == min(budget, int(candidates.sum()))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--output", default=None, help="default: a new temporary directory")
    parser.add_argument("--n-route", type=int, default=None)
    parser.add_argument("--n-simulated", type=int, default=None)
    args = parser.parse_args()
    quick = args.quick
    seeds = args.seeds or (2 if quick else 5)
    n_route = args.n_route or (100_000 if quick else 1_000_000)
    n_sim = args.n_simulated or (20_000 if quick else 100_000)
    candidates = 100 if quick else 500
    budgets = "0,0.25,0.5,1" if quick else "0,0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"

    work = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    output = Path(args.output) if args.output else work / "out"
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "SECRET_KEY": "bench-only",
        "VAR_DIR": str(work / "var"),
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "-v", "0")
    import_s = timed(lambda: llmbar_import(env, work, quick))
    features_s = timed(lambda: manage(env, "route", "--project", "llmbar", "--features-only"))
    started = time.perf_counter()
    report = evaluation(env, output, budgets=budgets, seeds=seeds, candidates=candidates)
    evaluate_s = time.perf_counter() - started
    print(report)
    quality = quality_summary(json.loads((output / "results.json").read_text()), report)
    n, route_s, sim_s = speed(env, n_route, n_sim, candidates)
    print(
        f"import {import_s:.1f} s, features {features_s:.1f} s, evaluation {evaluate_s:.1f} s; "
        f"routing {n_route:,} comparisons: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in route_s.items())
        + f"; hyper_simulated on {n_sim:,} with {candidates} candidates: {sim_s:.2f} s"
    )
    print(f"plot: {output / 'routing.png'}")
    print(
        json.dumps(
            {
                "n": n,
                "seeds": seeds,
                **quality,
                "route_1m_seconds": route_s,
                "route_n": n_route,
                "hyper_simulated_100k_seconds": sim_s,
                "hyper_simulated_n": n_sim,
                "hyper_simulated_candidates": candidates,
                "features_seconds": round(features_s, 1),
                "evaluate_seconds": round(evaluate_s, 1),
                "output": str(output),
            }
        )
    )


def evaluation(env: dict, output: Path, *, budgets: str, seeds: int, candidates: int) -> str:
    """`evaluate_routing` of every strategy on the project; its printed report."""
    return manage(
        env,
        "evaluate_routing",
        "--project",
        "llmbar",
        "--primary-judge",
        "ChatGPT",
        "--strategies",
        STRATEGIES,
        "--budgets",
        budgets,
        "--seeds",
        str(seeds),
        "--simulated-candidates",
        str(candidates),
        "--output",
        str(output),
    )


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def llmbar_import(env: dict, work: Path, quick: bool) -> None:
    """Every LLMBar subset with its evaluators into the project `llmbar` (--quick: a slice)."""
    sources = [DATA / subset for subset in SUBSETS]
    if quick:
        sources = [sliced_copy(DATA / SUBSETS[0], work / "Natural", QUICK_RECORDS)]
    for source in sources:
        manage(
            env,
            "import_comparisons",
            str(source / "dataset.json"),
            "--project",
            "llmbar",
            "--format",
            "llmbar",
            "--with-evaluators",
            "--create-project",
        )


def quality_summary(rows: list[dict], report: str) -> dict:
    """all_lm_accuracy, re_at_25 and its spread, worse_than_random and ppm_spearman (in the
    order the output prints them) from the evaluation's rows and printed report."""

    def at(strategy, budget):
        return [r for r in rows if r["strategy"] == strategy and abs(r["budget"] - budget) < 1e-9]

    re_at_25, spread = {}, {}
    for strategy in STRATEGIES.split(","):
        values = [r["routing_efficiency"] for r in at(strategy, 0.25)]
        if values and None not in values:
            re_at_25[strategy] = round(float(np.mean(values)), 4)
            spread[strategy] = [round(min(values), 4), round(max(values), 4)]
    worse = {}
    for strategy in STRATEGIES.split(","):
        if strategy in ("random", "all_lm", "all_human"):
            continue
        for budget in sorted({r["budget"] for r in rows}):
            mine = np.mean([r["label_accuracy"] for r in at(strategy, budget)])
            floor = min(r["label_accuracy"] for r in at("random", budget))
            if mine < floor - 1e-9:
                worse.setdefault(strategy, []).append(budget)
    acc0 = float(np.mean([r["label_accuracy"] for r in at("all_lm", 0.0)]))
    match = re.search(r"quadratic ([-\d.]+), linear ([-\d.]+)", report)
    return {
        "all_lm_accuracy": round(acc0, 4),
        "re_at_25": re_at_25,
        "re_at_25_spread": spread,
        "worse_than_random": worse,
        "ppm_spearman": {"quadratic": float(match[1]), "linear": float(match[2])}
        if match
        else None,
    }


def speed(env: dict, n_route: int, n_sim: int, candidates: int):
    """Routing speed on the real inputs, read once through Django from the benchmark database
    and resampled: (comparisons read, seconds per strategy on n_route, hyper_simulated's
    seconds on n_sim)."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from annotator.models import Project
    from routing.selectors import routing_inputs

    inputs = routing_inputs(Project.objects.get(slug="llmbar"), primary_judge="ChatGPT").inputs
    # Warm-up: the first call pays for importing scipy and scikit-learn, once per process.
    for strategy in (*SPEED_STRATEGIES, "hyper_simulated"):
        time_route(resample(inputs, 2000, 0.2, seed=0), strategy, 0.25, 10)
    big = resample(inputs, n_route, 0.02, seed=1)
    route_s = {s: round(time_route(big, s, 0.25, candidates), 3) for s in SPEED_STRATEGIES}
    del big
    sim = resample(inputs, n_sim, 0.02, seed=2)
    sim_s = round(time_route(sim, "hyper_simulated", 0.25, candidates), 3)
    return inputs.n, route_s, sim_s


if __name__ == "__main__":
    main()
