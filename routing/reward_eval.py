"""The expensive evaluation target (docs/architecture.md, "Evaluating a router"): accuracy, on
held-out human labels, of a reward model trained on a routed label set. ML module: the trainer
(torch, transformers) is imported when a model is trained.

Per seed the evaluated comparisons are split by prompt (scoring.training.data.split_by_prompt):
the reward model trains on the training side's routed labels (the bought human label where the
routing sent the comparison to humans, else the LM label; ties dropped) and is scored on the
held-out side against gold. Identical label sets (all_lm at every budget, for instance) train
once.
"""

from collections.abc import Sequence

import numpy as np

from routing.problem import A, B, RoutingProblem

HELD_OUT = 0.2


def rm_accuracy_function(
    texts: Sequence[tuple[str, str, str]],
    *,
    base: str = "minilm",
    epochs: int = 1,
    lr: float = 2e-5,
    batch_size: int = 16,
    max_length: int = 256,
):
    """A callback for evaluation.evaluate(rm_accuracy=...): texts[i] = (prompt, A, B) of the
    problem's comparison i."""
    from scoring.training.checkpoint import base_model_path
    from scoring.training.data import PreferencePair, split_by_prompt

    base_path = base_model_path(base)
    memo: dict[tuple, float] = {}

    def pair(i: int, code: int) -> PreferencePair | None:
        prompt, a, b = texts[i]
        if code == A:
            return PreferencePair(prompt=prompt, chosen=a, rejected=b, key=i)
        if code == B:
            return PreferencePair(prompt=prompt, chosen=b, rejected=a, key=i)
        return None  # a tie teaches a Bradley-Terry model nothing

    def measure(human: np.ndarray, problem: RoutingProblem, seed: int) -> float | None:
        from scoring.training.trainer import TrainConfig, evaluate, train_reward_model

        t = problem.targets
        evaluated = np.flatnonzero(t.labelled)
        gold_pairs = [pair(i, int(t.gold[i])) for i in evaluated]
        train_side, held_out = split_by_prompt(
            [p for p in gold_pairs if p], validation_fraction=HELD_OUT, seed=seed
        )
        train_ids = [p.key for p in train_side]
        routed = [int(t.bought[i]) if human[i] else int(t.lm[i]) for i in train_ids]
        key = (seed, tuple(train_ids), tuple(routed))
        if key not in memo:
            pairs = [p for p in (pair(i, c) for i, c in zip(train_ids, routed, strict=True)) if p]
            if not pairs or not held_out:
                return None
            config = TrainConfig(
                base_model=base_path,
                lr=lr,
                epochs=epochs,
                batch_size=batch_size,
                max_length=max_length,
                seed=seed,
            )
            result = train_reward_model(config, pairs)
            memo[key] = evaluate(
                result.model, result.tokenizer, held_out, max_length=max_length
            ).accuracy
        return memo[key]

    return measure
