"""Annotator competence: the Dawid-Skene model, fitted by EM over label arrays (numpy).

Each comparison has an unknown true class (A, B or tie) drawn from a class prior; each annotator
labels with their own confusion matrix P(label | true class). EM alternates the posterior over
each comparison's true class (E) and the prior and confusion matrices (M), starting from the
vote shares (Dawid & Skene 1979). Both steps are a handful of `np.bincount` calls over the label
arrays (timed in bench/analytics.py; figures in bench/README.md, "Analytics").

Written here rather than taken from crowd-kit (its DawidSkene is the reference the tests compare
with): crowd-kit works through pandas DataFrames and declares transformers as a dependency,
which the web and default worker processes must not load.

An additive (Dirichlet) smoothing of the confusion counts keeps an annotator with few labels
from getting probabilities of exactly 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DawidSkene:
    posteriors: np.ndarray  # (items, classes): P(true class | all labels)
    confusion: np.ndarray  # (workers, classes, classes): P(label | true class), rows true
    prior: np.ndarray  # (classes,)
    iterations: int
    converged: bool
    log_likelihood: float

    def worker_accuracy(self) -> np.ndarray:
        """P(a worker's label is right) under the model: sum_t prior_t * P(label t | true t)."""
        return np.einsum("t,wtt->w", self.prior, self.confusion)


def dawid_skene(
    item: np.ndarray,
    worker: np.ndarray,
    label: np.ndarray,
    *,
    n_items: int,
    n_workers: int,
    n_classes: int,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkene:
    """Fit Dawid-Skene to labels given as parallel arrays (item index, worker index, class).

    Items without labels get the prior as their posterior. Stops when the mean log-likelihood
    per label improves by less than `tolerance`.
    """
    labels = _Labels(
        item=np.asarray(item, dtype=np.int64),
        worker=np.asarray(worker, dtype=np.int64),
        label=np.asarray(label, dtype=np.int64),
        n_items=n_items,
        n_workers=n_workers,
        k=n_classes,
    )
    posteriors, labelled = labels.vote_shares()
    previous = -np.inf
    log_likelihood = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported after the loop)
        prior, confusion = labels.m_step(posteriors, labelled, smoothing)
        posteriors, normaliser = labels.e_step(prior, confusion)
        log_likelihood = float(normaliser[labelled].sum() / max(labels.label.size, 1))
        if log_likelihood - previous < tolerance:
            converged = True
            break
        previous = log_likelihood
    return DawidSkene(
        posteriors=posteriors,
        confusion=confusion,
        prior=prior,
        iterations=iterations,
        converged=converged,
        log_likelihood=log_likelihood,
    )


@dataclass
class _Labels:
    """The labels as parallel arrays, and the two EM steps over them."""

    item: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    n_items: int
    n_workers: int
    k: int  # classes
    worker_label: np.ndarray = field(init=False)  # worker * k + label: a confusion cell

    def __post_init__(self):
        self.worker_label = self.worker * self.k + self.label

    def vote_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """The starting posteriors (each item's vote shares; uniform without a vote), and which
        items have a label."""
        votes = np.zeros((self.n_items, self.k))
        np.add.at(votes, (self.item, self.label), 1.0)
        totals = votes.sum(axis=1, keepdims=True)
        posteriors = np.where(totals > 0, votes / np.maximum(totals, 1), 1.0 / self.k)
        return posteriors, totals[:, 0] > 0

    def m_step(
        self, posteriors: np.ndarray, labelled: np.ndarray, smoothing: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The class prior and each worker's confusion matrix from the current posteriors."""
        k, n_workers = self.k, self.n_workers
        prior = posteriors[labelled].sum(axis=0) + smoothing
        prior /= prior.sum()
        counts = np.empty((k, n_workers * k))
        weights = posteriors[self.item]
        for t in range(k):
            counts[t] = np.bincount(
                self.worker_label, weights=weights[:, t], minlength=n_workers * k
            )
        confusion = counts.reshape(k, n_workers, k).transpose(1, 0, 2) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        return prior, confusion

    def e_step(self, prior: np.ndarray, confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posteriors, from log P(true class, labels) per item normalised; and each item's
        log normaliser (its log-likelihood)."""
        log_confusion = np.log(confusion)
        contribution = log_confusion[self.worker, :, self.label]  # (labels, true classes)
        joint = np.empty((self.n_items, self.k))
        for t in range(self.k):
            joint[:, t] = np.bincount(self.item, weights=contribution[:, t], minlength=self.n_items)
        joint += np.log(prior)
        top = joint.max(axis=1, keepdims=True)
        normaliser = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        return np.exp(joint - normaliser[:, None]), normaliser


def robust_low(values: np.ndarray, *, min_gap: float, z: float = 2.0) -> np.ndarray:
    """Which values lie far below the rest: more than `z` robust standard deviations (1.4826 x
    the median absolute deviation) and at least `min_gap` below the median."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 3:
        return np.zeros(values.size, dtype=bool)
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    return (values < median - min_gap) & (values < median - z * spread)
