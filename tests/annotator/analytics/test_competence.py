import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene as CrowdKitDawidSkene

from annotator.analytics.competence import dawid_skene, robust_low


def _synthetic(seed: int, n_items: int, accuracies, per_item: int = 3):
    """Labels from annotators with planted accuracies (wrong answers uniform over the rest)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, n_items, p=[0.45, 0.4, 0.15])
    items, workers, labels = [], [], []
    for i in range(n_items):
        for w in rng.choice(len(accuracies), per_item, replace=False):
            if rng.random() < accuracies[w]:
                label = truth[i]
            else:
                label = rng.choice([c for c in range(3) if c != truth[i]])
            items.append(i)
            workers.append(w)
            labels.append(label)
    return truth, np.array(items), np.array(workers), np.array(labels)


def test_recovers_planted_annotator_accuracies():
    accuracies = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.35])
    truth, items, workers, labels = _synthetic(0, 6000, accuracies)
    model = dawid_skene(
        items, workers, labels, n_items=6000, n_workers=len(accuracies), n_classes=3
    )
    assert model.converged
    np.testing.assert_allclose(model.worker_accuracy(), accuracies, atol=0.03)
    np.testing.assert_allclose(model.prior, [0.45, 0.4, 0.15], atol=0.02)
    # Better than the majority vote at recovering the truth, because it trusts good annotators.
    votes = np.zeros((6000, 3))
    np.add.at(votes, (items, labels), 1)
    assert (model.posteriors.argmax(1) == truth).mean() > (votes.argmax(1) == truth).mean()
    # The spammer is the one flagged far below the rest.
    assert robust_low(model.worker_accuracy(), min_gap=0.15).tolist() == [False] * 7 + [True]


def test_matches_crowd_kit():
    _, items, workers, labels = _synthetic(1, 1500, [0.9, 0.8, 0.7, 0.6, 0.5, 0.45])
    ours = dawid_skene(
        items,
        workers,
        labels,
        n_items=1500,
        n_workers=6,
        n_classes=3,
        smoothing=1e-12,  # crowd-kit does not smooth
        max_iterations=100,
        tolerance=0.0,  # both run all 100 iterations
    )
    frame = pd.DataFrame({"task": items, "worker": workers, "label": labels})
    reference = CrowdKitDawidSkene(n_iter=100, tol=0.0).fit(frame)
    theirs = reference.probas_.sort_index()[[0, 1, 2]].to_numpy()
    np.testing.assert_allclose(ours.posteriors, theirs, atol=1e-6)


def test_items_without_labels_get_the_prior():
    model = dawid_skene(
        np.array([0, 0, 1]),
        np.array([0, 1, 0]),
        np.array([0, 0, 1]),
        n_items=3,
        n_workers=2,
        n_classes=3,
    )
    np.testing.assert_allclose(model.posteriors[2], model.prior)
    np.testing.assert_allclose(model.posteriors.sum(axis=1), 1.0)


def test_robust_low_needs_a_real_gap():
    assert not robust_low(np.array([0.8, 0.81, 0.79, 0.75]), min_gap=0.15).any()
    assert robust_low(np.array([0.8, 0.81, 0.79, 0.8, 0.4]), min_gap=0.15).tolist() == [
        False,
        False,
        False,
        False,
        True,
    ]
    assert not robust_low(np.array([0.9, 0.1]), min_gap=0.15).any()  # too few to say
