"""The router evaluation protocol (docs/architecture.md, "Evaluating a router"). Pure numpy,
plus a matplotlib plot.

On comparisons that have both human and LM labels: "buying" a human label uses one human
annotation, and the gold is the consensus of the others, or the single gold label
(problem.targets_build). For a routing at human fraction b:

    label accuracy(b)  = agreement of the routed label set with gold
                         (the bought human label where routed to humans, else the LM label)
    RE(b)              = (acc(b) - acc(0)) / (acc(1) - acc(0))     (random routing: RE(b) ~ b)

Every seed redraws the bought labels, the LM tie-breaks, the folds of the cross-fitting and the
strategies' own randomness. A learning strategy is measured under one of three protocols:

    cross-fit  every comparison is scored by a model fitted on the labels of the other folds:
               the labels of ~80% of the project, which a project that starts routing never
               has. An upper reference.
    online     the live loop replayed (routing.online): a seed drawn at random, then rounds of
               the comparisons the router ranks first, the router refitted only on what it
               has released, from the bought label. The seed counts against the budget.
    transfer   a prior (a router fitted on other projects) ranks, no label of this project seen.

Strategies that learn nothing (all_lm, all_human, random, judge_confidence) route the same under
every protocol. The HyPER strategies need the humans' own accuracy, which one bought label per
comparison cannot tell: they are measured cross-fitted only.
"""

from dataclasses import dataclass

import numpy as np

from routing.online import OnlinePlan, online_routing, round_scores
from routing.ppm import extend_bins, ppm_cross_validated_spearman
from routing.problem import RoutingInputs, RoutingProblem, problem_build
from routing.router import RouterModel
from routing.strategies import STRATEGIES, StrategyOptions, top_k

PROTOCOLS = ("cross-fit", "online", "transfer")
# The learning strategy that the online and transfer protocols replay: the live loop's router.
ROUTER_STRATEGY = "learned"

ROW_KEYS = (
    "protocol",
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


def protocol_applies(strategy: str, protocol: str) -> bool:
    """Whether the strategy is measured under the protocol (see the module docstring)."""
    return not STRATEGIES[strategy].learns or protocol == "cross-fit" or strategy == ROUTER_STRATEGY


@dataclass(frozen=True)
class OnlineSettings:
    """The online protocol's loop, its sizes as fractions of the evaluated comparisons, and
    the prior of the online and transfer protocols."""

    seed_fraction: float = 0.03
    batch_fraction: float = 0.03
    refit_every: int | None = None  # comparisons; None: after every round
    prior: RouterModel | None = None
    prior_threshold: int = 50
    strata: np.ndarray | None = None  # per comparison of the inputs: a stratified seed

    def plan(self, n: int, seed: int) -> OnlinePlan:
        batch = max(1, round(self.batch_fraction * n))
        return OnlinePlan(
            seed_size=round(self.seed_fraction * n),
            batch_size=batch,
            refit_every=self.refit_every or batch,
            seed_strata=self.strata,
            prior=self.prior,
            prior_threshold=self.prior_threshold,
            seed=seed,
        )


@dataclass
class Evaluation:
    rows: list[dict]
    n: int  # comparisons evaluated (with a binary gold)
    acc0: float  # all-LM label accuracy, mean over seeds
    acc1: float  # all-human label accuracy, mean over seeds
    ppm_spearman: dict[str, float] | None  # cross-validated, on the first seed
    skipped: list[tuple[str, str]]  # (protocol, strategy) pairs that do not apply


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
    protocols: tuple[str, ...] = ("cross-fit",),
    online: OnlineSettings | None = None,
) -> Evaluation:
    """Rows of ROW_KEYS for every protocol x strategy x budget x seed (the pairs that apply:
    `protocol_applies`). `rm_accuracy(human_mask, problem, seed)`, when given, trains and
    measures a reward model on each routed label set."""
    pairs, skipped = _pairs(strategies, protocols, online or OnlineSettings())
    rows, acc0s, acc1s, spearman = [], [], [], None
    n_eval = 0
    for seed in range(seeds):
        run = _SeedRun.build(inputs, seed=seed, folds=folds, online=online or OnlineSettings())
        n_eval = int(run.evaluated.sum())
        acc0s.append(run.acc0)
        acc1s.append(run.acc1)
        options = StrategyOptions(
            seed=seed, ppm_candidates=ppm_candidates, simulated_candidates=simulated_candidates
        )
        if seed == 0 and any(STRATEGIES[s].name.startswith("hyper") for _, s in pairs):
            spearman = run.ppm_spearman(n_candidates=simulated_candidates, folds=folds)
        for name, measured in _by_strategy(pairs):
            routed = run.rows(name, budgets, options, rm_accuracy, measured[0])
            rows += [{**row, "protocol": protocol} for protocol in measured for row in routed]
    return Evaluation(
        rows=rows,
        n=n_eval,
        acc0=float(np.mean(acc0s)),
        acc1=float(np.mean(acc1s)),
        ppm_spearman=spearman,
        skipped=skipped,
    )


def _pairs(strategies, protocols, online: OnlineSettings):
    """The (protocol, strategy) pairs to measure and those that do not apply, after checking
    the names."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    unknown += [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown strategies or protocols: {', '.join(unknown)}")
    if "transfer" in protocols and online.prior is None:
        raise ValueError("the transfer protocol routes with a prior: none given")
    pairs = [(p, s) for p in protocols for s in strategies if protocol_applies(s, p)]
    skipped = [(p, s) for p in protocols for s in strategies if not protocol_applies(s, p)]
    return pairs, skipped


def _by_strategy(pairs) -> list[tuple[str, list[str]]]:
    """Per strategy the protocols it is measured under; a strategy that learns nothing routes
    once and its rows are copied to each protocol."""
    out: dict[str, list[str]] = {}
    for protocol, strategy in pairs:
        out.setdefault(strategy, []).append(protocol)
    return [
        item
        for strategy, protocols in out.items()
        for item in (
            [(strategy, protocols)]
            if not STRATEGIES[strategy].learns
            else [(strategy, [p]) for p in protocols]
        )
    ]


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
    online: OnlineSettings

    @classmethod
    def build(
        cls, inputs: RoutingInputs, *, seed: int, folds: int, online: OnlineSettings
    ) -> "_SeedRun":
        problem = problem_build(inputs, seed=seed, folds=folds)
        t = problem.targets
        evaluated = t.labelled
        if not evaluated.sum():
            raise ValueError(
                "no comparison has both a human gold (a consensus that is not a tie) and can be "
                "scored: nothing to evaluate"
            )
        hr, lr = t.human_right[evaluated], t.lm_right[evaluated]
        return cls(problem, seed, evaluated, hr, lr, float(lr.mean()), float(hr.mean()), online)

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

    def rows(self, name, budgets, options, rm_accuracy, protocol: str) -> list[dict]:
        """One row per budget for the strategy under the protocol."""
        rows = []
        routings = self._routings(name, budgets, options, protocol)
        for budget, human in zip(budgets, routings, strict=True):
            human_e = human[self.evaluated]
            acc = label_accuracy(human_e, self.human_right, self.lm_right)
            rows.append(
                {
                    "protocol": protocol,
                    "strategy": name,
                    "budget": float(budget),
                    "human_fraction": float(human_e.mean()),
                    "label_accuracy": acc,
                    "routing_efficiency": routing_efficiency(acc, self.acc0, self.acc1),
                    "rm_accuracy": rm_accuracy(human, self.problem, self.seed)
                    if rm_accuracy
                    else None,
                    "seed": self.seed,
                }
            )
        return rows

    def _routings(self, name, budgets, options, protocol: str) -> list[np.ndarray]:
        """The human mask at each budget. A ranking strategy scores once and routes top-k; the
        online loop runs once to the largest budget, and a smaller budget's release is a prefix
        of its release order (routing.online)."""
        problem, evaluated, seed = self.problem, self.evaluated, self.seed
        ks = [round(b * int(evaluated.sum())) for b in budgets]
        strategy = STRATEGIES[name]
        plan = self.online.plan(int(evaluated.sum()), seed)
        if strategy.learns and protocol == "online":
            result = online_routing(problem, budget=max(ks), plan=plan, candidates=evaluated)
            return [(result.order >= 0) & (result.order < k) for k in ks]
        if strategy.learns and protocol == "transfer":
            scores, _ = round_scores(problem, evaluated, own=None, plan=plan, n_own=0)
        elif strategy.score:
            scores = strategy.scores(problem, evaluated, options)
        else:
            return [strategy.route(problem, evaluated, k, options).human for k in ks]
        return [top_k(scores, evaluated, k, seed) for k in ks]


def summary_table(rows: list[dict]) -> list[dict]:
    """Mean and spread (min, max over seeds) per protocol, strategy and budget, protocol by
    protocol."""
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["protocol"], row["strategy"], row["budget"]), []).append(row)
    table = []
    for (protocol, strategy, budget), members in groups.items():
        acc = np.array([r["label_accuracy"] for r in members])
        re = np.array(
            [r["routing_efficiency"] for r in members if r["routing_efficiency"] is not None]
        )
        rm = [r["rm_accuracy"] for r in members if r["rm_accuracy"] is not None]
        table.append(
            {
                "protocol": protocol,
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
    return sorted(table, key=lambda r: PROTOCOLS.index(r["protocol"]))  # stable: one block each


def format_table(table: list[dict]) -> str:
    lines = [
        f"{'protocol':<10} {'strategy':<18} {'budget':>6} {'human':>6} {'label acc':>10} "
        f"{'(min-max)':>13} {'RE':>7} {'(min-max)':>15} {'RM acc':>7}"
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
            f"{r['protocol']:<10} {r['strategy']:<18} {r['budget']:>6.2f} "
            f"{r['human_fraction']:>6.2f} {num(r['label_accuracy'], 10)} {spread_acc:>13} "
            f"{num(r['routing_efficiency'], 7)} {spread_re:>15} {num(r['rm_accuracy'], 7)}"
        )
    return "\n".join(lines)


# How each protocol's curve of a learning strategy is named and drawn.
PROTOCOL_LABELS = {
    "cross-fit": "cross-fit, upper reference",
    "online": "online",
    "transfer": "transfer, prior only",
}
PROTOCOL_STYLES = {"cross-fit": "--", "online": ".-", "transfer": ":"}


def plot(table: list[dict], path, *, title: str = "") -> None:
    """Label accuracy against human fraction: one line per strategy that learns nothing (the
    same under every protocol), one per protocol for each learning strategy (cross-fit dashed,
    labelled as the upper reference it is); random with its spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for protocol, name in _curves(table):
        points = sorted(
            (r for r in table if (r["protocol"], r["strategy"]) == (protocol, name)),
            key=lambda r: r["budget"],
        )
        x = [r["human_fraction"] for r in points]
        y = [r["label_accuracy"] for r in points]
        learns = STRATEGIES[name].learns
        style = "o" if name in ("all_human", "all_lm") else ".-"
        label = f"{name} ({PROTOCOL_LABELS[protocol]})" if learns else name
        (line,) = ax.plot(x, y, PROTOCOL_STYLES[protocol] if learns else style, label=label)
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


def _curves(table: list[dict]) -> list[tuple[str, str]]:
    """(protocol, strategy) of each line to draw: a strategy that learns nothing once."""
    curves, drawn = [], set()
    for row in table:
        key = (row["protocol"], row["strategy"])
        if key in curves or (not STRATEGIES[row["strategy"]].learns and row["strategy"] in drawn):
            continue
        curves.append(key)
        drawn.add(row["strategy"])
    return curves
