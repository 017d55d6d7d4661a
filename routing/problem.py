"""The routing problem as arrays: the feature matrix, the PPM's binned tags, the judge's numbers
and, where humans labelled, the learning targets. Pure numpy; no ORM.

`selectors.routing_inputs` reads a project into `RoutingInputs`; `problem_build` turns that into
a `RoutingProblem` that the strategies (routing/strategies.py) work on. The benchmark
(bench/routing.py) resamples such inputs, so that routing at scale is measured without a
database.
"""

from dataclasses import dataclass, field

import numpy as np

# Label codes in the vote and LM-choice arrays.
A, B, TIE, NONE = 0, 1, 2, -1
CHOICE_CODES = {"A": A, "B": B, "tie": TIE}

# Stored text features (routing/features.py), in matrix order.
TEXT_COLUMNS = (
    "len_prompt",
    "len_a",
    "len_b",
    "len_shorter",
    "len_longer",
    "len_diff",
    "rouge1_f",
    "cosine",
    "cosine_lenpen",
    "entity_iou",
)
# The four lengths the paper uses as percentile ranks.
RANKED_LENGTHS = ("len_diff", "len_prompt", "len_shorter", "len_longer")

# The paper's three bins: [0, .33], (.33, .67], (.67, 1]. One function for every caller: the
# reference code had inclusive edges in one script and exclusive in another
# (docs/architecture.md, "Routing").
BIN_EDGES = (0.33, 0.67)


def bin3(values: np.ndarray) -> np.ndarray:
    """Bin index 0, 1 or 2 of values in [0, 1]; -1 where the value is NaN."""
    values = np.asarray(values, dtype=np.float64)
    out = np.digitize(values, BIN_EDGES, right=True).astype(np.int32)
    out[np.isnan(values)] = -1
    return out


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Rank of each value among the non-NaN ones, scaled to (0, 1] (ties get their mean rank)."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    if ok.any():
        out[ok] = rankdata(values[ok], method="average") / ok.sum()
    return out


@dataclass
class RoutingInputs:
    """What a real project has at routing time, as column arrays (n comparisons)."""

    text: dict[str, np.ndarray]  # TEXT_COLUMNS -> float (NaN: not computed / undefined)
    tag_codes: np.ndarray  # (n, K) int: index into tag_vocabulary, -1 for none
    tag_vocabulary: list[str]  # descriptive tags ("subset=Natural")
    p_a: np.ndarray  # primary judge's P(A better), NaN without a label
    consistent: np.ndarray  # 1 / 0 whether the two shown orders agree; NaN unknown
    truncated: np.ndarray  # 1 / 0
    lm_choice: np.ndarray  # primary judge's choice code (A, B, TIE, NONE)
    others_agree: np.ndarray  # share of the other judges that chose as the primary; NaN: none
    others_p_a: np.ndarray  # mean P(A better) of the other judges; NaN: none
    votes: np.ndarray  # (n, V) human choice codes, NONE padded
    # Each other judge's choice code per comparison (NONE: no label), by judge name: which
    # judge disagrees matters (a strong judge's dissent says more than a weak one's).
    other_choices: dict[str, np.ndarray] = field(default_factory=dict)
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.p_a)


def inputs_take(inputs: RoutingInputs, rows: np.ndarray) -> RoutingInputs:
    """The inputs of the comparisons at `rows` (indices, repeats allowed): one subset of a
    project as a project of its own (a prior's leave-one-out), or a resample of it (the
    benchmark)."""
    return RoutingInputs(
        text={k: np.asarray(v)[rows] for k, v in inputs.text.items()},
        tag_codes=inputs.tag_codes[rows],
        tag_vocabulary=inputs.tag_vocabulary,
        p_a=inputs.p_a[rows],
        consistent=inputs.consistent[rows],
        truncated=inputs.truncated[rows],
        lm_choice=inputs.lm_choice[rows],
        others_agree=inputs.others_agree[rows],
        others_p_a=inputs.others_p_a[rows],
        votes=inputs.votes[rows],
        other_choices={k: v[rows] for k, v in inputs.other_choices.items()},
        ids=inputs.ids[rows] if inputs.ids.size else inputs.ids,
    )


def tag_strata(inputs: RoutingInputs, key: str) -> np.ndarray:
    """Per comparison the code of its first descriptive tag `key=...` (the tag's index in the
    vocabulary), -1 where it has none: strata for a stratified seed."""
    out = np.full(inputs.n, -1, dtype=np.int64)
    wanted = np.array([v.startswith(f"{key}=") for v in inputs.tag_vocabulary] + [False])
    codes = inputs.tag_codes
    for column in range(codes.shape[1] - 1, -1, -1):  # last to first: the first tag wins
        hit = wanted[codes[:, column]] & (codes[:, column] >= 0)
        out[hit] = codes[hit, column]
    return out


@dataclass
class Targets:
    """Per comparison, under the evaluation protocol (docs/architecture.md, "Evaluating a
    router"): one human label is "bought", the gold is the consensus of the others (or the
    single label), ties at random."""

    labelled: np.ndarray  # bool: has a gold to learn from / score against
    human_right: np.ndarray  # 1 / 0 whether the bought human label matches gold (NaN: none)
    lm_right: np.ndarray  # 1 / 0 whether the primary judge's label matches gold (NaN: none)
    # The labels themselves (choice codes; NONE where not labelled), for training on them.
    bought: np.ndarray | None = None
    gold: np.ndarray | None = None
    lm: np.ndarray | None = None


class RoutingProblem:
    """What the strategies see. The feature matrix (for the learned strategy) and the binned
    tags (for the PPM) are built from the inputs on first use: a strategy that needs neither
    (random, judge_confidence) routes a million comparisons without building them."""

    def __init__(
        self,
        *,
        p_a: np.ndarray,
        consistent: np.ndarray,
        targets: Targets,
        folds: np.ndarray,
        lm_undecided: np.ndarray,
        inputs: RoutingInputs | None = None,
        X: np.ndarray | None = None,
        columns: list[str] | None = None,
        bins: np.ndarray | None = None,
        tag_names: list[str] | None = None,
    ):
        self.p_a, self.consistent, self.targets = p_a, consistent, targets
        self.folds, self.lm_undecided, self.inputs = folds, lm_undecided, inputs
        self._X, self._columns, self._bins, self._tag_names = X, columns, bins, tag_names
        self._ranks: dict[str, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.p_a)

    def _length_ranks(self) -> dict[str, np.ndarray]:
        if self._ranks is None:
            self._ranks = {c: percentile_rank(self.inputs.text[c]) for c in RANKED_LENGTHS}
        return self._ranks

    @property
    def X(self) -> np.ndarray:
        if self._X is None:
            self._X, self._columns = feature_matrix(self.inputs, self._length_ranks())
        return self._X

    @X.setter
    def X(self, value: np.ndarray) -> None:
        self._X = value

    @property
    def columns(self) -> list[str]:
        self.X  # noqa: B018 (builds it)
        return self._columns

    @property
    def bins(self) -> np.ndarray:
        if self._bins is None:
            self._bins, self._tag_names = tag_bins(self.inputs, self._length_ranks())
        return self._bins

    @property
    def tag_names(self) -> list[str]:
        self.bins  # noqa: B018 (builds them)
        return self._tag_names

    @property
    def n_tags(self) -> int:
        return len(self.tag_names)


def majority(codes: np.ndarray) -> int:
    """The most common of A/B/TIE among the codes, NONE when empty or when two tie for first."""
    codes = codes[codes != NONE]
    if codes.size == 0:
        return NONE
    counts = np.bincount(codes, minlength=3)
    best = counts.max()
    winners = np.flatnonzero(counts == best)
    return int(winners[0]) if winners.size == 1 else NONE


def targets_build(votes: np.ndarray, lm_choice: np.ndarray, *, seed: int) -> Targets:
    """Buy one human label per comparison (a random one where there are several) and score it
    and the LM label against the consensus of the others. Gold that is a tie or has no majority
    cannot be matched by a binary label: such comparisons are left out. LM ties and missing LM
    labels are broken at random (a coin is what the LM label is worth there)."""
    rng = np.random.default_rng(seed)
    n = len(lm_choice)
    labelled = np.zeros(n, dtype=bool)
    human_right = np.full(n, np.nan)
    lm_right = np.full(n, np.nan)
    coins = rng.integers(0, 2, size=n)
    lm = np.where(np.isin(lm_choice, (A, B)), lm_choice, coins)
    counts = (votes != NONE).sum(axis=1) if votes.size else np.zeros(n, dtype=int)
    picks = rng.random(n)
    bought_codes = np.full(n, NONE, dtype=np.int32)
    gold_codes = np.full(n, NONE, dtype=np.int32)
    for i in np.flatnonzero(counts > 0):
        row = votes[i][votes[i] != NONE]
        if row.size == 1:
            bought, gold = int(row[0]), int(row[0])
        else:
            k = int(picks[i] * row.size)
            bought, gold = int(row[k]), majority(np.delete(row, k))
        if gold not in (A, B):
            continue
        labelled[i] = True
        human_right[i] = float(bought == gold)
        lm_right[i] = float(lm[i] == gold)
        bought_codes[i], gold_codes[i] = bought, gold
    return Targets(
        labelled=labelled,
        human_right=human_right,
        lm_right=lm_right,
        bought=bought_codes,
        gold=gold_codes,
        lm=lm.astype(np.int32),
    )


def _fold_ids(labelled: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    out = np.full(len(labelled), -1, dtype=np.int32)
    idx = np.flatnonzero(labelled)
    out[rng.permutation(idx)] = np.arange(idx.size) % max(1, folds)
    return out


def len_ratio(shorter: np.ndarray, longer: np.ndarray) -> np.ndarray:
    """Shorter over longer response length: 1 for two empty responses (equal lengths, not an
    unknown), 0 when one is empty; NaN only where the lengths are unknown."""
    safe = np.where(longer > 0, longer, 1.0)
    return np.where(longer > 0, shorter / safe, np.where(longer == 0, 1.0, np.nan))


def feature_matrix(
    inputs: RoutingInputs, ranks: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[str]]:
    """The learned strategy's features, NaN where unknown."""
    n = inputs.n
    named: list[tuple[str, np.ndarray]] = []
    for c in TEXT_COLUMNS:
        values = np.asarray(inputs.text[c], dtype=np.float64)
        named.append((c, np.log1p(values) if c.startswith("len_") else values))
    named += [(f"rank_{c}", ranks[c]) for c in RANKED_LENGTHS]
    named.append(("len_ratio", len_ratio(inputs.text["len_shorter"], inputs.text["len_longer"])))
    named += [
        ("judge_p_a", inputs.p_a),
        ("judge_confidence", np.abs(inputs.p_a - 0.5)),
        ("judge_consistent", inputs.consistent),
        ("judge_truncated", inputs.truncated),
        ("judge_has_label", (~np.isnan(inputs.p_a)).astype(np.float64)),
        ("judges_agree", inputs.others_agree),
        ("judges_p_a_gap", np.abs(inputs.others_p_a - inputs.p_a)),
    ]
    for name, choices in sorted(inputs.other_choices.items()):
        both = np.isin(choices, (A, B)) & np.isin(inputs.lm_choice, (A, B))
        named.append(
            (f"agrees:{name}", np.where(both, (choices == inputs.lm_choice).astype(float), np.nan))
        )
    vocab = inputs.tag_vocabulary
    X = np.zeros((n, len(named) + len(vocab)))
    for j, (_, values) in enumerate(named):
        X[:, j] = values
    if inputs.tag_codes.size:
        rows, ks = np.nonzero(inputs.tag_codes >= 0)
        X[rows, len(named) + inputs.tag_codes[rows, ks]] = 1.0
    return X, [name for name, _ in named] + [f"tag:{v}" for v in vocab]


def tag_bins(inputs: RoutingInputs, ranks: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """The PPM's tags per comparison: every continuous feature in three bins, judge flags and
    the descriptive tags. (n, W) indices into the returned names, -1 for none."""
    text = inputs.text
    consistent = inputs.consistent
    binned = {
        **{f"rank_{c}": ranks[c] for c in RANKED_LENGTHS},
        "rouge1_f": text["rouge1_f"],
        "cosine": np.clip(text["cosine"], 0.0, 1.0),
        "cosine_lenpen": np.clip(text["cosine_lenpen"], 0.0, 1.0),
        "entity_iou": text["entity_iou"],
        "judge_confidence": np.abs(inputs.p_a - 0.5) * 2.0,
        "judges_agree": inputs.others_agree,
    }
    tag_names: list[str] = []
    bin_cols = []
    for name, values in binned.items():
        b = bin3(values)
        base = len(tag_names)
        tag_names += [f"{name}:{k}" for k in range(3)]
        bin_cols.append(np.where(b >= 0, base + b, -1))
    flags = {
        "judge:inconsistent": consistent == 0,
        "judge:consistent": consistent == 1,
        "judge:no_label": np.isnan(inputs.p_a),
        "judge:truncated": inputs.truncated == 1,
    }
    for name, mask in flags.items():
        bin_cols.append(np.where(mask, len(tag_names), -1))
        tag_names.append(name)
    base = len(tag_names)
    tag_names += [f"tag:{v}" for v in inputs.tag_vocabulary]
    if inputs.tag_codes.size:
        bin_cols.append(np.where(inputs.tag_codes >= 0, base + inputs.tag_codes, -1))
    return np.column_stack(bin_cols).astype(np.int32), tag_names


def problem_build(inputs: RoutingInputs, *, seed: int = 0, folds: int = 5) -> RoutingProblem:
    """Targets and folds from a project's inputs; features and tags follow on first use."""
    targets = targets_build(inputs.votes, inputs.lm_choice, seed=seed)
    fold_ids = _fold_ids(targets.labelled, folds, np.random.default_rng([seed, 1]))
    return RoutingProblem(
        p_a=np.asarray(inputs.p_a, dtype=np.float64),
        consistent=np.asarray(inputs.consistent, dtype=np.float64),
        targets=targets,
        folds=fold_ids,
        lm_undecided=~np.isin(inputs.lm_choice, (A, B)),
        inputs=inputs,
    )
