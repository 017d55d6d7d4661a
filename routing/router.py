"""The router's model: P(the LM label is wrong) from a comparison's features, fitted on the
comparisons whose human labels are known. Pure (numpy, scikit-learn); no ORM.

One model serves the `learned` strategy (cross-fitted over a labelled project), the online
protocol of the evaluation and the live routing loop (fitted on what the loop has bought so far),
and priors (fitted on other projects, on the columns that mean the same across datasets).

A fitted model is stored with skops (`router_dumps`), never pickle: `router_loads` refuses a file
whose SHA-256 is not the one recorded when it was stored, and any type other than the few this
module writes.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routing.problem import NONE, A, B, RoutingProblem

# Features that mean the same in any project (docs/architecture.md, "Routing"): how sure and
# how self-consistent the judge is, whether other judges agree, lengths as ranks and ratios,
# similarity of the two responses. Not raw lengths, tags or judge names, which are dataset's own.
TRANSFERABLE_COLUMNS = (
    "judge_confidence",
    "judge_consistent",
    "judge_has_label",
    "judge_truncated",
    "judges_agree",
    "judges_p_a_gap",
    "rank_len_diff",
    "rank_len_prompt",
    "rank_len_shorter",
    "rank_len_longer",
    "len_ratio",
    "rouge1_f",
    "cosine",
    "cosine_lenpen",
    "entity_iou",
)
# Rows per prediction call: bounds the copy of the feature matrix a prediction makes.
PREDICT_CHUNK = 100_000
# The types of a stored router that skops asks about (it trusts numpy arrays and
# scikit-learn's estimators itself): plain data holders, nothing that runs code on load.
# Anything else is refused.
_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
]


class RouterFileError(ValueError):
    """A stored router that must not be loaded: altered since it was stored, or of a type this
    platform does not write."""


@dataclass(frozen=True)
class RouterModel:
    columns: tuple[str, ...]  # feature columns, in the estimator's order
    estimator: object | None  # a fitted classifier; None: `constant` for every comparison
    constant: float = 0.5
    n_train: int = 0  # comparisons it learned from


# Labelled comparisons at which the trees weigh as much as the linear model (see _classifier).
TREES_HALF_WEIGHT_AT = 500
# Inverse L2 strength of the linear model, on standardised features.
LINEAR_C = 0.1


def _classifier(seed: int, n_train: int, *, linear_only: bool = False):
    """A regularised logistic regression and, unless `linear_only`, small gradient-boosted trees
    averaged with it, the trees' weight n / (n + TREES_HALF_WEIGHT_AT) growing with the labels:
    with a few dozen labels (an online router after its seed) the linear model is the stable
    one; with thousands, the trees' interactions pay. Priors are linear only: a linear model's
    relation between a judge's signals and its errors carries over to a project it has not seen
    better than trees fitted to the source projects' particulars (bench/README.md, "Routing")."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    linear = make_pipeline(
        # A missing value (features not computed, no other judge) is a signal of its own.
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=LINEAR_C, max_iter=1000),
    )
    if linear_only:
        return linear
    # Small and regularised: leaves may be small with a few dozen labels. 50 trees at rate 0.15
    # route LLMBar as well as 150 at 0.05 and predict faster (bench/README.md).
    trees = HistGradientBoostingClassifier(
        max_depth=3,
        learning_rate=0.15,
        max_iter=50,
        min_samples_leaf=min(10, max(2, n_train // 8)),
        l2_regularization=1.0,
        random_state=seed,
    )
    w = n_train / (n_train + TREES_HALF_WEIGHT_AT)
    return VotingClassifier(
        [("linear", linear), ("trees", trees)], voting="soft", weights=[1 - w, w]
    )


def features(problem: RoutingProblem, rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """The problem's feature matrix at `rows` and `columns` (by name); NaN for a column the
    problem does not have (a prior's column that this project lacks)."""
    index = {name: j for j, name in enumerate(problem.columns)}
    out = np.full((rows.size, len(columns)), np.nan)
    present = [(k, index[name]) for k, name in enumerate(columns) if name in index]
    if present:
        ks, js = zip(*present, strict=True)
        out[:, list(ks)] = problem.X[np.ix_(rows, list(js))]
    return out


def router_fit(
    problem: RoutingProblem,
    rows: np.ndarray,
    lm_wrong: np.ndarray,
    *,
    seed: int = 0,
    columns: Sequence[str] | None = None,
) -> RouterModel:
    """Fit on the comparisons `rows` (indices) whose LM label is known to be wrong (1) or right
    (0) (`lm_wrong`, aligned with `rows`). Comparisons where the judge gave no A/B answer are
    left out: their label is a coin, and would only blur the target. Columns with no value in
    the training rows (features not computed) are dropped."""
    decided = ~problem.lm_undecided[rows]
    rows, y = rows[decided], np.asarray(lm_wrong, dtype=float)[decided]
    names = tuple(problem.columns if columns is None else columns)
    return router_fit_matrix(features(problem, rows, names), y, names, seed)


def router_fit_matrix(
    X: np.ndarray, y: np.ndarray, names: tuple[str, ...], seed: int, *, linear_only: bool = False
) -> RouterModel:
    """The model of a feature matrix `X` (columns `names`) and targets `y` (1: LM label wrong):
    a constant with one class seen, else the classifier (linear only with `linear_only`: a
    prior's) on the columns that have a value somewhere."""
    y = y.astype(int)
    if y.size == 0 or y.min() == y.max():
        rate = float(y.mean()) if y.size else 0.5  # one class seen: its rate
        return RouterModel(columns=names, estimator=None, constant=rate, n_train=int(y.size))
    known = ~np.isnan(X).all(axis=0)
    names = tuple(n for n, keep in zip(names, known, strict=True) if keep)
    estimator = _classifier(seed, y.size, linear_only=linear_only).fit(X[:, known], y)
    return RouterModel(columns=names, estimator=estimator, n_train=int(y.size))


def bought_lm_wrong(problem: RoutingProblem) -> np.ndarray:
    """The router's target per comparison: 1 where the bought human label (the label a routed
    set holds; problem.targets_build) differs from the LM label, 0 where they agree, NaN where
    no A/B label was bought (none, or a human tie, which says nothing about which side the LM
    should have taken). The online loop and priors learn from this, never from the held-out
    gold."""
    t = problem.targets
    bought = t.bought if t.bought is not None else np.full(problem.n, NONE)
    decided = np.isin(bought, (A, B))
    return np.where(decided, (bought != t.lm).astype(float), np.nan)


def single_thread():
    """One BLAS/OpenMP thread for the router's fits: its models are small, and spinning threads
    on cores that the web, the workers and the database also use makes them slower
    (bench/README.md, "Routing")."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def router_score(model: RouterModel, problem: RoutingProblem, rows: np.ndarray) -> np.ndarray:
    """P(the LM label is wrong) at `rows`; exactly 0.5 where the judge gave no A/B answer."""
    if model.estimator is None:
        p = np.full(rows.size, model.constant)
    else:
        p = np.concatenate(
            [
                router_predict(model, features(problem, chunk, model.columns))
                for chunk in np.array_split(rows, max(1, rows.size // PREDICT_CHUNK))
            ]
        )
    return np.where(problem.lm_undecided[rows], 0.5, p)


def router_predict(model: RouterModel, X: np.ndarray) -> np.ndarray:
    """P(the LM label is wrong) for feature rows `X` in the model's columns, in their order."""
    if model.estimator is None:
        return np.full(X.shape[0], model.constant)
    return model.estimator.predict_proba(X)[:, 1]


def router_dumps(model: RouterModel) -> bytes:
    import skops.io

    return skops.io.dumps(
        {
            "columns": list(model.columns),
            "estimator": model.estimator,
            "constant": model.constant,
            "n_train": model.n_train,
        }
    )


def router_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def router_loads(data: bytes, *, sha256: str) -> RouterModel:
    """A stored router, after checking that it is the file that was stored (`sha256`) and holds
    only the types this module writes."""
    import skops.io

    if router_sha256(data) != sha256:
        raise RouterFileError("the stored router does not match its recorded SHA-256: altered")
    untrusted = [t for t in skops.io.get_untrusted_types(data=data) if t not in _TRUSTED_TYPES]
    if untrusted:
        raise RouterFileError(f"the stored router holds types it may not: {', '.join(untrusted)}")
    state = skops.io.loads(data, trusted=_TRUSTED_TYPES)
    return RouterModel(
        columns=tuple(state["columns"]),
        estimator=state["estimator"],
        constant=float(state["constant"]),
        n_train=int(state["n_train"]),
    )
