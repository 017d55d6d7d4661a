"""The routing problem as arrays: the feature matrix, the PPM's binned tags, the judge's numbers
and, where humans labelled, the learning targets. Pure numpy; no ORM.

`selectors.routing_inputs` reads a project into `RoutingInputs`; `problem_build` turns that into
a `RoutingProblem` that the strategies (routing/strategies.py) work on. The benchmark builds the
same inputs synthetically, so that routing a million comparisons is measured without a database.
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
# reference code had inclusive edges in one script and exclusive in another (DESIGN.md s. 4).
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


@dataclass
class Targets:
    """Per comparison, under the evaluation protocol (DESIGN.md section 4): one human label is
    "bought", the gold is the consensus of the others (or the single label), ties at random."""

    labelled: np.ndarray  # bool: has a gold to learn from / score against
    human_right: np.ndarray  # 1 / 0 whether the bought human label matches gold (NaN: none)
    lm_right: np.ndarray  # 1 / 0 whether the primary judge's label matches gold (NaN: none)


@dataclass
class RoutingProblem:
    X: np.ndarray  # (n, d) float, NaN allowed: the learned strategy's features
    columns: list[str]
    bins: np.ndarray  # (n, W) int32 indices into tag_names, -1 for none: the PPM's tags
    tag_names: list[str]
    p_a: np.ndarray
    consistent: np.ndarray
    targets: Targets
    folds: np.ndarray  # (n,) fold of each labelled comparison, -1 for the rest
    # The primary judge gave no A/B answer (a tie, or no label): its label there is a coin.
    lm_undecided: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def n(self) -> int:
        return len(self.p_a)

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
    return Targets(labelled=labelled, human_right=human_right, lm_right=lm_right)


def _fold_ids(labelled: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    out = np.full(len(labelled), -1, dtype=np.int32)
    idx = np.flatnonzero(labelled)
    out[rng.permutation(idx)] = np.arange(idx.size) % max(1, folds)
    return out


def problem_build(inputs: RoutingInputs, *, seed: int = 0, folds: int = 5) -> RoutingProblem:
    """Feature matrix, binned tags, targets and folds from a project's inputs."""
    n = inputs.n
    text = {c: np.asarray(inputs.text[c], dtype=np.float64) for c in TEXT_COLUMNS}
    ranks = {c: percentile_rank(text[c]) for c in RANKED_LENGTHS}
    has_lm = ~np.isnan(inputs.p_a)
    confidence = np.abs(inputs.p_a - 0.5)  # NaN without a label
    consistent = inputs.consistent.astype(np.float64)

    columns, cols = [], []

    def add(name, values):
        columns.append(name)
        cols.append(np.asarray(values, dtype=np.float64))

    for c in TEXT_COLUMNS:
        add(c, np.log1p(text[c]) if c.startswith("len_") else text[c])
    for c in RANKED_LENGTHS:
        add(f"rank_{c}", ranks[c])
    add("judge_p_a", inputs.p_a)
    add("judge_confidence", confidence)
    add("judge_consistent", consistent)
    add("judge_truncated", inputs.truncated)
    add("judge_has_label", has_lm.astype(np.float64))
    add("judges_agree", inputs.others_agree)
    add("judges_p_a_gap", np.abs(inputs.others_p_a - inputs.p_a))
    for name, choices in sorted(inputs.other_choices.items()):
        both = np.isin(choices, (A, B)) & np.isin(inputs.lm_choice, (A, B))
        add(f"agrees:{name}", np.where(both, (choices == inputs.lm_choice).astype(float), np.nan))
    vocab = inputs.tag_vocabulary
    onehot = np.zeros((n, len(vocab)))
    if inputs.tag_codes.size:
        rows, ks = np.nonzero(inputs.tag_codes >= 0)
        onehot[rows, inputs.tag_codes[rows, ks]] = 1.0
    for k, name in enumerate(vocab):
        add(f"tag:{name}", onehot[:, k])
    X = np.column_stack(cols) if cols else np.zeros((n, 0))

    # The PPM's tags: every continuous feature in three bins, judge flags, descriptive tags.
    binned = {
        **{f"rank_{c}": ranks[c] for c in RANKED_LENGTHS},
        "rouge1_f": text["rouge1_f"],
        "cosine": np.clip(text["cosine"], 0.0, 1.0),
        "cosine_lenpen": np.clip(text["cosine_lenpen"], 0.0, 1.0),
        "entity_iou": text["entity_iou"],
        "judge_confidence": confidence * 2.0,
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
        "judge:no_label": ~has_lm,
        "judge:truncated": inputs.truncated == 1,
    }
    for name, mask in flags.items():
        bin_cols.append(np.where(mask, len(tag_names), -1))
        tag_names.append(name)
    base = len(tag_names)
    tag_names += [f"tag:{v}" for v in vocab]
    if inputs.tag_codes.size:
        bin_cols.append(np.where(inputs.tag_codes >= 0, base + inputs.tag_codes, -1))
    bins = np.column_stack(bin_cols).astype(np.int32)

    targets = targets_build(inputs.votes, inputs.lm_choice, seed=seed)
    fold_ids = _fold_ids(targets.labelled, folds, np.random.default_rng([seed, 1]))
    return RoutingProblem(
        X=X,
        columns=columns,
        bins=bins,
        tag_names=tag_names,
        p_a=np.asarray(inputs.p_a, dtype=np.float64),
        consistent=consistent,
        targets=targets,
        folds=fold_ids,
        lm_undecided=~np.isin(inputs.lm_choice, (A, B)),
    )
