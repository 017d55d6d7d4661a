"""Routing benchmark: how well each strategy routes LLMBar under each protocol, and how fast.

Quality: every LLMBar subset pooled (Natural, the four Adversarial ones, and the Processed
MT-Bench, LLMEval^2 and FairEval: 885 pairs with a gold label and several judges' verdicts in
both orders), imported through `import_comparisons --format llmbar --with-evaluators` into a
fresh SQLite database, text features computed (`route --features-only`), then
`evaluate_routing --primary-judge ChatGPT --protocol cross-fit,online` over budgets 0-1 and 5
seeds: its table, its plot (routing.png) and results.json land in --output. Judge ties (the two
orders disagree) are broken at random, as the evaluation protocol does. The online protocol
replays the live loop with the command's defaults (a 3% seed, rounds of 3%, a refit after each).

Transfer, leave one subset out: for each subset, a prior (routing.online.prior_fit) is fitted on
the other seven, each as a project of its own, and routes the held-out subset with no label of
it (the transfer protocol of routing.evaluation); RE per subset and their mean.

Speed, with precomputed features (no database): the real project's inputs resampled with
replacement to 1,000,000 comparisons, 2% of them human-labelled (what the learning strategies
train on); each strategy builds the problem (ranks, bins, targets) and routes the unlabelled
ones under a 25% budget. `hyper_simulated` the same on 100,000 comparisons with 500 candidates.
And the live loop's step: one refit of the router on 100,000 resampled comparisons of which a
quarter are labelled (a project a quarter into its budget), then scoring all 100,000.

    python bench/routing.py [--quick] [--seeds 5] [--output DIR]

`--quick` (about a minute): the first 30 pairs of each subset, 2 seeds, 5 budgets, 100k / 20k
comparisons for speed, 100 candidates. Same output shape. The last line is one JSON object:
online_re_025, crossfit_re_025 (the best strategy's mean RE(0.25) under each protocol, all_human
aside), transfer_re_025 (mean over held-out subsets), random_re_025, re (protocol -> strategy ->
RE at 0.1, 0.25, 0.5), re_at_25_spread, transfer (subset -> RE at 0.1, 0.25, 0.5, and the
prior's AUC), worse_than_random (protocol -> strategy -> budgets where its mean label accuracy
falls below random's lowest seed), route_1m_seconds (strategy -> seconds),
hyper_simulated_100k_seconds, refit_rescore_100k_seconds, all_lm_accuracy, ppm_spearman, n,
seconds.
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
PROTOCOLS = ("cross-fit", "online")
REPORTED_BUDGETS = (0.1, 0.25, 0.5)
QUICK_RECORDS = 30
# Strategies whose RE says nothing about routing (all_human ignores the budget: RE 1).
TRIVIAL = ("all_lm", "all_human")


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
    from routing.problem import NONE, inputs_take

    rng = np.random.default_rng(seed)
    out = inputs_take(inputs, rng.integers(0, inputs.n, size=n))
    out.votes = out.votes.copy()
    out.votes[rng.random(n) >= labelled_share] = NONE
    return out


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
    started = time.perf_counter()
    quick = args.quick
    seeds = args.seeds or (2 if quick else 5)
    n_route = args.n_route or (100_000 if quick else 1_000_000)
    n_sim = args.n_simulated or (20_000 if quick else 100_000)
    candidates = 100 if quick else 500
    budgets = (
        "0,0.1,0.25,0.5,1" if quick else "0,0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"
    )

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
    evaluate_started = time.perf_counter()
    report = evaluation(env, output, budgets=budgets, seeds=seeds, candidates=candidates)
    evaluate_s = time.perf_counter() - evaluate_started
    print(report)
    quality = quality_summary(json.loads((output / "results.json").read_text()), report)
    inputs = project_inputs(env)
    transfer_started = time.perf_counter()
    transfer = transfer_summary(inputs, seeds=seeds)
    transfer_s = time.perf_counter() - transfer_started
    print(format_transfer(transfer))
    n, route_s, sim_s = speed(inputs, n_route, n_sim, candidates)
    refit_s = refit_rescore(inputs, 100_000)
    print(
        f"import {import_s:.1f} s, features {features_s:.1f} s, evaluation {evaluate_s:.1f} s, "
        f"transfer {transfer_s:.1f} s; routing {n_route:,} comparisons: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in route_s.items())
        + f"; hyper_simulated on {n_sim:,} with {candidates} candidates: {sim_s:.2f} s; "
        f"refit and re-score of 100,000: {refit_s:.2f} s"
    )
    print(f"plot: {output / 'routing.png'}")
    print(
        json.dumps(
            {
                **headline(quality, transfer),
                "n": n,
                "seeds": seeds,
                **quality,
                "transfer": transfer,
                "route_1m_seconds": route_s,
                "route_n": n_route,
                "hyper_simulated_100k_seconds": sim_s,
                "hyper_simulated_n": n_sim,
                "hyper_simulated_candidates": candidates,
                "refit_rescore_100k_seconds": refit_s,
                "features_seconds": round(features_s, 1),
                "evaluate_seconds": round(evaluate_s, 1),
                "transfer_seconds": round(transfer_s, 1),
                "output": str(output),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


def headline(quality: dict, transfer: dict) -> dict:
    """The figures the targets are set on: the best strategy's RE(0.25) under each protocol
    (all_human and all_lm aside), random's, and the transfer mean over held-out subsets."""

    def best(protocol):
        values = [
            v["0.25"]
            for s, v in quality["re"].get(protocol, {}).items()
            if s not in TRIVIAL and v.get("0.25") is not None
        ]
        return max(values) if values else None

    return {
        "online_re_025": best("online"),
        "crossfit_re_025": best("cross-fit"),
        "transfer_re_025": transfer["mean"]["0.25"],
        "random_re_025": quality["re"]["online"]["random"]["0.25"],
    }


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
        "--protocol",
        ",".join(PROTOCOLS),
        "--output",
        str(output),
    )


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def llmbar_import(env: dict, work: Path, quick: bool) -> None:
    """Every LLMBar subset with its evaluators into the project `llmbar` (--quick: the first
    QUICK_RECORDS of each)."""
    sources = [DATA / subset for subset in SUBSETS]
    if quick:
        sources = [
            sliced_copy(source, work / "slices" / subset, QUICK_RECORDS)
            for source, subset in zip(sources, SUBSETS, strict=True)
        ]
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
    """all_lm_accuracy, re (protocol -> strategy -> mean RE at REPORTED_BUDGETS), the spread of
    RE(0.25), worse_than_random and ppm_spearman from the evaluation's rows and report."""

    def at(protocol, strategy, budget):
        return [
            r
            for r in rows
            if (r["protocol"], r["strategy"]) == (protocol, strategy)
            and abs(r["budget"] - budget) < 1e-9
        ]

    measured = sorted({(r["protocol"], r["strategy"]) for r in rows})
    re_by, spread, worse = {}, {}, {}
    for protocol, strategy in measured:
        for budget in REPORTED_BUDGETS:
            values = [r["routing_efficiency"] for r in at(protocol, strategy, budget)]
            if values and None not in values:
                re_by.setdefault(protocol, {}).setdefault(strategy, {})[str(budget)] = round(
                    float(np.mean(values)), 4
                )
                if budget == 0.25:
                    spread.setdefault(protocol, {})[strategy] = [
                        round(min(values), 4),
                        round(max(values), 4),
                    ]
        if strategy in (*TRIVIAL, "random"):
            continue
        for budget in sorted({r["budget"] for r in rows}):
            mine = np.mean([r["label_accuracy"] for r in at(protocol, strategy, budget)])
            floor = min(r["label_accuracy"] for r in at(protocol, "random", budget))
            if mine < floor - 1e-9:
                worse.setdefault(protocol, {}).setdefault(strategy, []).append(budget)
    acc0 = float(np.mean([r["label_accuracy"] for r in at("online", "all_lm", 0.0)]))
    match = re.search(r"quadratic ([-\d.]+), linear ([-\d.]+)", report)
    return {
        "all_lm_accuracy": round(acc0, 4),
        "re": re_by,
        "re_at_25_spread": spread,
        "worse_than_random": worse,
        "ppm_spearman": {"quadratic": float(match[1]), "linear": float(match[2])}
        if match
        else None,
    }


def project_inputs(env: dict):
    """The benchmark project's routing inputs, read once through Django."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from annotator.models import Project
    from routing.selectors import routing_inputs

    return routing_inputs(Project.objects.get(slug="llmbar"), primary_judge="ChatGPT").inputs


def transfer_summary(inputs, *, seeds: int) -> dict:
    """Leave one subset out: a prior fitted on the other subsets (each a problem of its own,
    as projects are) routes the held-out one, which it has no label of. Per subset RE at
    REPORTED_BUDGETS (mean over seeds) and the prior's leave-one-problem-out AUC on its
    sources; `mean` over subsets."""
    from routing.evaluation import OnlineSettings, evaluate
    from routing.online import prior_fit
    from routing.problem import inputs_take, problem_build, tag_strata

    strata = tag_strata(inputs, "subset")
    subsets = {inputs.tag_vocabulary[c].split("=", 1)[1]: c for c in np.unique(strata) if c >= 0}
    out = {}
    for name, code in sorted(subsets.items()):
        sources = [
            problem_build(inputs_take(inputs, np.flatnonzero(strata == other)), seed=0)
            for other in subsets.values()
            if other != code
        ]
        prior, metrics = prior_fit(sources, seed=0)
        result = evaluate(
            inputs_take(inputs, np.flatnonzero(strata == code)),
            strategies=["learned"],
            budgets=list(REPORTED_BUDGETS),
            seeds=seeds,
            protocols=("transfer",),
            online=OnlineSettings(prior=prior),
        )
        out[name] = {
            str(b): _mean_re([r for r in result.rows if r["budget"] == b]) for b in REPORTED_BUDGETS
        }
        out[name] |= {"n": result.n, "prior_auc": round(metrics["auc"], 4)}
    out["mean"] = {
        str(b): round(float(np.mean([v[str(b)] for v in out.values() if v[str(b)] is not None])), 4)
        for b in REPORTED_BUDGETS
    }
    return out


def _mean_re(rows: list[dict]) -> float | None:
    values = [r["routing_efficiency"] for r in rows if r["routing_efficiency"] is not None]
    return round(float(np.mean(values)), 4) if values else None


def format_transfer(transfer: dict) -> str:
    lines = ["transfer (prior fitted on the other subsets, no label of the held-out one):"]
    lines.append(
        f"  {'held-out subset':<16} {'n':>4} {'RE(0.1)':>8} {'RE(0.25)':>9} "
        f"{'RE(0.5)':>8} {'prior AUC':>10}"
    )
    for name, v in transfer.items():
        cells = " ".join(
            f"{v[str(b)]:>{w}.3f}" if v[str(b)] is not None else f"{'-':>{w}}"
            for b, w in zip(REPORTED_BUDGETS, (8, 9, 8), strict=True)
        )
        n = f"{v['n']:>4}" if "n" in v else f"{'':>4}"
        auc = f"{v['prior_auc']:>10.3f}" if "prior_auc" in v else ""
        lines.append(f"  {name:<16} {n} {cells} {auc}")
    return "\n".join(lines)


def speed(inputs, n_route: int, n_sim: int, candidates: int):
    """Routing speed on the real inputs resampled: (comparisons read, seconds per strategy on
    n_route, hyper_simulated's seconds on n_sim)."""
    # Warm-up: the first call pays for importing scipy and scikit-learn, once per process.
    for strategy in (*SPEED_STRATEGIES, "hyper_simulated"):
        time_route(resample(inputs, 2000, 0.2, seed=0), strategy, 0.25, 10)
    big = resample(inputs, n_route, 0.02, seed=1)
    route_s = {s: round(time_route(big, s, 0.25, candidates), 3) for s in SPEED_STRATEGIES}
    del big
    sim = resample(inputs, n_sim, 0.02, seed=2)
    sim_s = round(time_route(sim, "hyper_simulated", 0.25, candidates), 3)
    return inputs.n, route_s, sim_s


def refit_rescore(inputs, n: int) -> float:
    """Seconds of the live loop's step on n resampled comparisons, a quarter of them with a
    bought label: refit the router on those, score all n (one thread, as the loop runs it).
    The feature matrix is built first, outside the timing (the loop reads it with the
    project)."""
    from routing.problem import problem_build
    from routing.router import bought_lm_wrong, router_fit, router_score, single_thread

    problem = problem_build(resample(inputs, n, 0.25, seed=3), seed=0)
    problem.X  # noqa: B018 (builds it)
    target = bought_lm_wrong(problem)
    rows = np.flatnonzero(~np.isnan(target))
    every = np.arange(problem.n)
    with single_thread():
        started = time.perf_counter()
        model = router_fit(problem, rows, target[rows], seed=0)
        score = router_score(model, problem, every)
        elapsed = time.perf_counter() - started
    assert score.shape == (n,) and model.estimator is not None
    return round(elapsed, 3)


if __name__ == "__main__":
    main()
