"""The router evaluation protocol (docs/architecture.md, "Evaluating a router"). Pure numpy,
plus a matplotlib plot.

On comparisons that have both human and LM labels: "buying" a human label uses one human
annotation, and the gold is the consensus of the others, or the single gold label
(problem.targets_build). For a routing at human fraction b:

    label accuracy(b)  = agreement of the routed label set with gold
                         (the bought human label where routed to humans, else the LM label)
    RE(b)              = (acc(b) - acc(0)) / (acc(1) - acc(0))     (random routing: RE(b) ~ b)

Every seed redraws the bought labels, the LM tie-breaks, the folds of the cross-fitting and the
strategies' own randomness. Learning strategies are cross-fitted over the evaluated
comparisons, so each is scored only by models that did not see its label.
"""

from dataclasses import dataclass

import numpy as np

from routing.ppm import extend_bins, ppm_cross_validated_spearman
from routing.problem import RoutingInputs, RoutingProblem, problem_build
from routing.strategies import STRATEGIES, StrategyOptions, top_k

ROW_KEYS = (
    "strategy",
    "budget",
    "human_fraction",
    "label_accuracy",
    "routing_efficiency",
    "rm_accuracy",
    "seed",
)


def routing_efficiency(acc: float, acc0: float, acc1: float) -> float | None:
    """(acc(b) - acc(0)) / (acc(1) - acc(0)); None when humans and LM are equally accurate."""
    if acc1 == acc0:
        return None
    return (acc - acc0) / (acc1 - acc0)


def label_accuracy(human: np.ndarray, human_right: np.ndarray, lm_right: np.ndarray) -> float:
    return float(np.where(human, human_right, lm_right).mean())


@dataclass
class Evaluation:
    rows: list[dict]
    n: int  # comparisons evaluated (with a binary gold)
    acc0: float  # all-LM label accuracy, mean over seeds
    acc1: float  # all-human label accuracy, mean over seeds
    ppm_spearman: dict[str, float] | None  # cross-validated, on the first seed


def evaluate(
    inputs: RoutingInputs,
    *,
    strategies: list[str],
    budgets: list[float],
    seeds: int = 5,
    folds: int = 5,
    ppm_candidates: int = 300,
    simulated_candidates: int = 500,
    rm_accuracy=None,
) -> Evaluation:
    """Rows of ROW_KEYS for every strategy x budget x seed. `rm_accuracy(human_mask, problem,
    seed)`, when given, trains and measures a reward model on each routed label set."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies: {', '.join(unknown)}")
    rows, acc0s, acc1s, spearman = [], [], [], None
    n_eval = 0
    for seed in range(seeds):
        run = _SeedRun.build(inputs, seed=seed, folds=folds)
        n_eval = int(run.evaluated.sum())
        acc0s.append(run.acc0)
        acc1s.append(run.acc1)
        options = StrategyOptions(
            seed=seed, ppm_candidates=ppm_candidates, simulated_candidates=simulated_candidates
        )
        if seed == 0 and any(STRATEGIES[s].name.startswith("hyper") for s in strategies):
            spearman = run.ppm_spearman(n_candidates=simulated_candidates, folds=folds)
        for name in strategies:
            rows += run.rows(name, budgets, options, rm_accuracy)
    return Evaluation(
        rows=rows,
        n=n_eval,
        acc0=float(np.mean(acc0s)),
        acc1=float(np.mean(acc1s)),
        ppm_spearman=spearman,
    )


@dataclass
class _SeedRun:
    """One seed of the protocol: the problem with its bought labels and gold drawn, and the
    all-LM and all-human accuracies on the evaluated comparisons."""

    problem: RoutingProblem
    seed: int
    evaluated: np.ndarray  # bool: has a binary gold
    human_right: np.ndarray  # on the evaluated comparisons
    lm_right: np.ndarray
    acc0: float
    acc1: float

    @classmethod
    def build(cls, inputs: RoutingInputs, *, seed: int, folds: int) -> "_SeedRun":
        problem = problem_build(inputs, seed=seed, folds=folds)
        t = problem.targets
        evaluated = t.labelled
        if not evaluated.sum():
            raise ValueError(
                "no comparison has both a human gold (a consensus that is not a tie) and can be "
                "scored: nothing to evaluate"
            )
        hr, lr = t.human_right[evaluated], t.lm_right[evaluated]
        return cls(problem, seed, evaluated, hr, lr, float(lr.mean()), float(hr.mean()))

    def ppm_spearman(self, *, n_candidates: int, folds: int) -> dict[str, float]:
        """The PPM's cross-validated Spearman on its candidates (routing.ppm)."""
        problem = self.problem
        return ppm_cross_validated_spearman(
            extend_bins(problem.bins[self.evaluated], problem.n_tags),
            problem.n_tags,
            self.human_right,
            self.lm_right,
            n_candidates=n_candidates,
            folds=folds,
            seed=self.seed,
        )

    def rows(self, name: str, budgets: list[float], options, rm_accuracy) -> list[dict]:
        """One row per budget for the strategy: a ranking strategy scores once, routes top-k."""
        problem, evaluated, seed = self.problem, self.evaluated, self.seed
        strategy = STRATEGIES[name]
        scores = strategy.scores(problem, evaluated, options) if strategy.score else None
        n_eval = int(evaluated.sum())
        rows = []
        for budget in budgets:
            k = round(budget * n_eval)
            if scores is not None:
                human = top_k(scores, evaluated, k, seed)
            else:
                human = strategy.route(problem, evaluated, k, options).human
            human_e = human[evaluated]
            acc = label_accuracy(human_e, self.human_right, self.lm_right)
            rows.append(
                {
                    "strategy": name,
                    "budget": float(budget),
                    "human_fraction": float(human_e.mean()),
                    "label_accuracy": acc,
                    "routing_efficiency": routing_efficiency(acc, self.acc0, self.acc1),
                    "rm_accuracy": rm_accuracy(human, problem, seed) if rm_accuracy else None,
                    "seed": seed,
                }
            )
        return rows


def summary_table(rows: list[dict]) -> list[dict]:
    """Mean and spread (min, max over seeds) per strategy and budget."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["budget"]), []).append(row)
    table = []
    for (strategy, budget), members in groups.items():
        acc = np.array([r["label_accuracy"] for r in members])
        re = np.array(
            [r["routing_efficiency"] for r in members if r["routing_efficiency"] is not None]
        )
        rm = [r["rm_accuracy"] for r in members if r["rm_accuracy"] is not None]
        table.append(
            {
                "strategy": strategy,
                "budget": budget,
                "human_fraction": float(np.mean([r["human_fraction"] for r in members])),
                "label_accuracy": float(acc.mean()),
                "label_accuracy_min": float(acc.min()),
                "label_accuracy_max": float(acc.max()),
                "routing_efficiency": float(re.mean()) if re.size else None,
                "routing_efficiency_min": float(re.min()) if re.size else None,
                "routing_efficiency_max": float(re.max()) if re.size else None,
                "rm_accuracy": float(np.mean(rm)) if rm else None,
                "seeds": len(members),
            }
        )
    return table


def format_table(table: list[dict]) -> str:
    lines = [
        f"{'strategy':<18} {'budget':>6} {'human':>6} {'label acc':>10} {'(min-max)':>13} "
        f"{'RE':>7} {'(min-max)':>15} {'RM acc':>7}"
    ]

    def num(x, width, digits=3):
        return f"{x:>{width}.{digits}f}" if x is not None else f"{'-':>{width}}"

    for r in table:
        spread_acc = f"{r['label_accuracy_min']:.3f}-{r['label_accuracy_max']:.3f}"
        spread_re = (
            f"{r['routing_efficiency_min']:.2f}-{r['routing_efficiency_max']:.2f}"
            if r["routing_efficiency"] is not None
            else "-"
        )
        lines.append(
            f"{r['strategy']:<18} {r['budget']:>6.2f} {r['human_fraction']:>6.2f} "
            f"{num(r['label_accuracy'], 10)} {spread_acc:>13} {num(r['routing_efficiency'], 7)} "
            f"{spread_re:>15} {num(r['rm_accuracy'], 7)}"
        )
    return "\n".join(lines)


def plot(table: list[dict], path, *, title: str = "") -> None:
    """Label accuracy against human fraction, one line per strategy; random with its spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    strategies = list(dict.fromkeys(r["strategy"] for r in table))
    for name in strategies:
        points = sorted((r for r in table if r["strategy"] == name), key=lambda r: r["budget"])
        x = [r["human_fraction"] for r in points]
        y = [r["label_accuracy"] for r in points]
        style = "o" if name in ("all_human", "all_lm") else ".-"
        (line,) = ax.plot(x, y, style, label=name)
        if name == "random":
            ax.fill_between(
                x,
                [r["label_accuracy_min"] for r in points],
                [r["label_accuracy_max"] for r in points],
                color=line.get_color(),
                alpha=0.2,
                label="random (min-max over seeds)",
            )
    ax.set_xlabel("human fraction")
    ax.set_ylabel("label accuracy against gold")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
