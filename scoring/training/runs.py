"""Reward-model runs: start, execute on a worker, cancel, reap, retrain as labels arrive, score.

The trainer (scoring/training/trainer.py) works on plain records; this module reads the
project's labels, writes progress, metrics and a heartbeat to the run row while it trains, and
keeps the checkpoint under REWARD_MODEL_DIR/<run id>/.
"""

import logging
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotator.background import (
    RunRefused,
    RunStatus,
    run_claim,
    run_finish,
    run_heartbeat,
    runs_reap,
)
from annotator.final_labels import latest_lm_labels, project_primary_judge
from annotator.models import Comparison, HumanLabel, LMLabel, Project
from scoring.local_models import MODELS
from scoring.models import ProjectScoring, RewardModelRun
from scoring.training.tasks import train_reward_model_task

logger = logging.getLogger(__name__)

HYPERPARAMETERS = (
    "lr",
    "epochs",
    "batch_size",
    "grad_accum",
    "max_length",
    "warmup_ratio",
    "weight_decay",
    "scheduler",
    "use_margin",
    "center_coef",
    "seed",
)
# How often a running training looks at the row for a cancel request.
CANCEL_POLL_S = 2.0


class RewardRunActive(Exception):
    """The project already has a queued or running reward-model run."""


def reward_run_start(*, project: Project, enqueue: bool = True, **options) -> RewardModelRun:
    """Create a run with the given base model, label source and hyperparameters; a worker on
    the gpu queue starts it once this transaction commits. One active run per project."""
    try:
        with transaction.atomic():
            run = RewardModelRun(project=project, **options)
            run.full_clean(exclude=["project"])
            run.save()
            if enqueue:
                train_reward_model_task.delay_on_commit(run.pk)
    except IntegrityError:
        raise RewardRunActive(
            f"project {project.slug!r} already has a queued or running reward-model run"
        ) from None
    return run


def training_rows(project: Project) -> list[dict]:
    """Per labelled comparison: texts, human votes and the primary judge's latest label."""
    judge = project_primary_judge(project)
    votes: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for pk, choice, strength in HumanLabel.objects.filter(comparison__project=project).values_list(
        "comparison_id", "overall_choice", "overall_strength"
    ):
        votes[pk].append((choice, strength))
    lm: dict[int, tuple[str, str]] = {}
    if judge:
        for pk, choice, strength in latest_lm_labels(
            LMLabel.objects.filter(comparison__project=project, judge_name=judge)
        ).values_list("comparison_id", "choice", "strength"):
            lm[pk] = (choice, strength)
    labelled = set(votes) | set(lm)
    rows = []
    for pk, ext, prompt, a, b in (
        Comparison.objects.filter(project=project, id__in=labelled)
        .order_by("id")
        .values_list("id", "external_id", "prompt", "response_a", "response_b")
        .iterator(chunk_size=2000)
    ):
        rows.append(
            {
                "id": pk,
                "external_id": ext,
                "prompt": prompt,
                "response_a": a,
                "response_b": b,
                "human_votes": votes.get(pk, []),
                "lm": lm.get(pk),
            }
        )
    return rows


def _run_start(run: RewardModelRun) -> list[str]:
    """A fresh start: training begins again from the base model; a cancelled run ends here."""
    if run.cancel_requested:
        raise RunRefused(RunStatus.CANCELLED)
    run.started_at, run.metrics, run.progress = timezone.now(), [], 0.0
    return ["metrics", "progress"]


def reward_run_execute(*, run_id: int, model=None, tokenizer=None) -> RewardModelRun:
    """Train the run's model (in this process), recording progress; then save the checkpoint."""
    run = run_claim(
        RewardModelRun,
        run_id,
        stale_after=timedelta(seconds=settings.REWARD_STALE_SECONDS),
        prepare=_run_start,
    )
    if run is None:
        return RewardModelRun.objects.get(pk=run_id)
    progress = _Progress(run.pk)
    try:
        config, train, validation = _training_data(run, model_given=model is not None)
        result = _train(config, train, validation, progress, model=model, tokenizer=tokenizer)
        if result.stopped:
            run_finish(RewardModelRun, run.pk, RunStatus.CANCELLED, metrics=progress.series)
            return RewardModelRun.objects.get(pk=run.pk)
        final = dict(result.final_metrics)
        if run.eval_project_id:
            final.update(_held_out(run, result))
        directory = _save(run, result, config, final, sizes=(len(train), len(validation)))
    except Exception as exc:
        logger.exception("reward run %s failed", run.pk)
        run_finish(RewardModelRun, run.pk, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return RewardModelRun.objects.get(pk=run.pk)
    run_finish(
        RewardModelRun,
        run.pk,
        RunStatus.SUCCEEDED,
        final_metrics=final,
        metrics=progress.series,
        progress=1.0,
        checkpoint_dir=str(directory),
        device=str(getattr(result.model, "device", "")),
    )
    return RewardModelRun.objects.get(pk=run.pk)


def _training_data(run: RewardModelRun, *, model_given: bool):
    """(TrainConfig, train pairs, validation pairs) of the run; the counts go on its row."""
    from scoring.training.checkpoint import base_model_path
    from scoring.training.data import pairs_from_rows, split_by_prompt
    from scoring.training.trainer import TrainConfig

    config = TrainConfig(
        # A model passed in (tests) stands for the base model, which is then only a name.
        base_model=run.base_model if model_given else base_model_path(run.base_model),
        **{name: getattr(run, name) for name in HYPERPARAMETERS},
    )
    pairs = pairs_from_rows(
        training_rows(run.project), label_source=run.label_source, use_margin=run.use_margin
    )
    train, validation = split_by_prompt(pairs, seed=run.seed)
    if not train:
        raise ValueError(
            f"no training pairs: the project has no {run.label_source} labels that are not ties"
        )
    RewardModelRun.objects.filter(pk=run.pk).update(
        n_train=len(train), n_validation=len(validation)
    )
    return config, train, validation


class _Progress:
    """The trainer's callbacks for a run: every log entry goes on the row with a heartbeat;
    a cancel request is looked for every CANCEL_POLL_S."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.series: list[dict] = []
        self.last_poll = time.monotonic()

    def on_log(self, entry: dict) -> None:
        self.series.append(entry)
        run_heartbeat(
            RewardModelRun,
            self.run_id,
            metrics=self.series,
            progress=min(1.0, float(entry.get("progress") or 0.0)),
            pairs_per_second=entry.get("pairs_per_s"),
        )

    def should_stop(self) -> bool:
        if time.monotonic() - self.last_poll < CANCEL_POLL_S:
            return False
        self.last_poll = time.monotonic()
        run_heartbeat(RewardModelRun, self.run_id)
        return RewardModelRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()


def _train(config, train, validation, progress: _Progress, *, model, tokenizer):
    from scoring.training.trainer import train_reward_model

    return train_reward_model(
        config,
        train,
        validation,
        on_log=progress.on_log,
        should_stop=progress.should_stop,
        model=model,
        tokenizer=tokenizer,
    )


def _save(run: RewardModelRun, result, config, final: dict, *, sizes: tuple[int, int]):
    """The checkpoint under REWARD_MODEL_DIR/<run id>/."""
    from scoring.training.checkpoint import save_checkpoint

    directory = Path(settings.REWARD_MODEL_DIR) / str(run.pk)
    save_checkpoint(
        directory,
        result.model,
        result.tokenizer,
        config=config,
        metrics=final,
        data={
            "project": run.project.slug,
            "label_source": run.label_source,
            "train_pairs": sizes[0],
            "validation_pairs": sizes[1],
            "run": run.pk,
        },
        max_length=run.max_length,
    )
    return directory


def _held_out(run: RewardModelRun, result) -> dict:
    from scoring.training.data import pairs_from_rows
    from scoring.training.trainer import evaluate

    pairs = pairs_from_rows(training_rows(run.eval_project), label_source="human")
    if not pairs:
        return {"heldout_pairs": 0}
    scores = evaluate(result.model, result.tokenizer, pairs, max_length=run.max_length)
    return scores.as_metrics(prefix="heldout_")


def reward_run_cancel(*, run_id: int) -> RewardModelRun:
    """Ask a run to stop: a queued one is cancelled now, a running one at its next step."""
    with transaction.atomic():
        run = RewardModelRun.objects.select_for_update().get(pk=run_id)
        if run.status == RewardModelRun.Status.QUEUED:
            run.status, run.finished_at = RewardModelRun.Status.CANCELLED, timezone.now()
        run.cancel_requested = True
        run.save(update_fields=["status", "finished_at", "cancel_requested"])
    return run


def reward_runs_reap() -> int:
    """Mark runs whose worker stopped sending heartbeats as failed; a new run can then start."""
    return runs_reap(
        RewardModelRun,
        stale_after=timedelta(seconds=settings.REWARD_STALE_SECONDS),
        error="the worker stopped sending heartbeats (killed or lost); start the run again",
    )


def reward_retrain_count(*, project_id: int, new_labels: int) -> RewardModelRun | None:
    """Count new labels toward the project's retrain threshold (ProjectScoring.retrain_every);
    start a run when it is crossed (at most one active run per project, so a burst of labels
    starts one run)."""
    if new_labels <= 0:
        return None
    settings_of = ProjectScoring.objects.filter(project_id=project_id, retrain_every__gt=0)
    if not settings_of.update(labels_since_retrain=F("labels_since_retrain") + new_labels):
        return None  # retraining is off (or was never set up) for the project
    crossed = settings_of.filter(labels_since_retrain__gte=F("retrain_every")).update(
        labels_since_retrain=0
    )
    if not crossed:
        return None
    latest = RewardModelRun.objects.filter(project_id=project_id).order_by("-id").first()
    options = {"base_model": latest.base_model} if latest else {}
    try:
        with transaction.atomic():
            return reward_run_start(project=Project.objects.get(pk=project_id), **options)
    except RewardRunActive:
        return None


def reward_pairs_score(*, run: RewardModelRun, items: list[dict]) -> list[dict]:
    """Rewards of both responses of each {prompt, response_a, response_b} and the predicted
    preference (p_a = sigmoid(r_a - r_b))."""
    import math

    from scoring.training.checkpoint import load_reward_model, score_texts

    if run.status != RewardModelRun.Status.SUCCEEDED or not run.checkpoint_dir:
        raise ValueError(f"reward run #{run.pk} has no checkpoint ({run.status})")
    # Kept loaded in this process: callers score in batches (scoring.local_models.MODELS).
    loaded = MODELS.get(
        ("reward-model", run.pk, run.checkpoint_dir),
        lambda: load_reward_model(run.checkpoint_dir),
    )
    texts = [(i["prompt"], i["response_a"]) for i in items] + [
        (i["prompt"], i["response_b"]) for i in items
    ]
    rewards = score_texts(loaded.model, loaded.tokenizer, texts, max_length=run.max_length)
    out = []
    for index, item in enumerate(items):
        r_a, r_b = rewards[index], rewards[len(items) + index]
        p_a = 1.0 / (1.0 + math.exp(-(r_a - r_b)))
        out.append(
            {
                **{k: v for k, v in item.items() if k in ("external_id", "id")},
                "reward_a": r_a,
                "reward_b": r_b,
                "p_a": p_a,
                "preferred": "A" if r_a > r_b else "B" if r_b > r_a else "tie",
            }
        )
    return out
