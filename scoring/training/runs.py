"""Reward-model runs: start, execute on a worker, cancel, reap, retrain as labels arrive, score.

The trainer (scoring/training/trainer.py) works on plain records; this module reads the
project's labels, writes progress, metrics and a heartbeat to the run row while it trains, and
keeps the checkpoint under REWARD_MODEL_DIR/<run id>/.

A run then labels its project with the trained model (where ProjectScoring.
label_with_reward_model is on): every comparison gets an LM label of the judge
REWARD_MODEL_JUDGE, version "run-<id>", so that the model is a judge like any other and the
latest run's labels supersede the older runs' (annotator.final_labels.latest_lm_labels). The
labelling is part of the run: the run stays running, with a heartbeat and labels_done /
labels_total, and succeeds once every comparison has its label. A failure while labelling fails
the run with the reason; the checkpoint (saved and on the row before labelling starts) and the
labels committed so far are kept.
"""

import logging
import math
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef
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
from annotator.labels import Choice, LabelSource, Strength
from annotator.models import Comparison, HumanLabel, LMLabel, Project
from annotator.services import project_labels_changed
from scoring.local_models import MODELS
from scoring.models import REWARD_MODEL_JUDGE, ProjectScoring, RewardModelRun
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
# Comparisons scored and committed together while a run labels its project.
LABEL_CHUNK_SIZE = 512
# A label is a tie where |p_a - 0.5| is below this (a judge's default Judge.tie_threshold).
REWARD_TIE_THRESHOLD = 0.05


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
    run.checkpoint_dir, run.labels_total, run.labels_done = "", 0, 0
    return ["metrics", "progress", "checkpoint_dir", "labels_total", "labels_done"]


def reward_run_execute(
    *, run_id: int, model=None, tokenizer=None, label_chunk_size: int = LABEL_CHUNK_SIZE
) -> RewardModelRun:
    """Train the run's model (in this process), recording progress, and save the checkpoint;
    then, where the project wants it (ProjectScoring.label_with_reward_model), label the
    project's comparisons with the model. The run succeeds once both are done."""
    run = run_claim(
        RewardModelRun,
        run_id,
        stale_after=timedelta(seconds=settings.REWARD_STALE_SECONDS),
        prepare=_run_start,
    )
    if run is None:
        return RewardModelRun.objects.get(pk=run_id)
    trained = _train_and_save(run, model=model, tokenizer=tokenizer)
    if trained is not None:
        _label_and_finish(run, trained, chunk_size=label_chunk_size)
    return RewardModelRun.objects.get(pk=run.pk)


class _Trained(NamedTuple):
    model: Any
    tokenizer: Any
    splits: dict[int, str]  # comparison id -> "train" or "validation": what the model saw


def _train_and_save(run: RewardModelRun, *, model, tokenizer) -> _Trained | None:
    """Train and save the checkpoint; None where the run ended here (cancelled or failed). The
    checkpoint goes on the row as soon as it is complete, so a later failure keeps it."""
    progress = _Progress(run.pk)
    try:
        config, train, validation = _training_data(run, model_given=model is not None)
        result = _train(config, train, validation, progress, model=model, tokenizer=tokenizer)
        if result.stopped:
            run_finish(RewardModelRun, run.pk, RunStatus.CANCELLED, metrics=progress.series)
            return None
        final = dict(result.final_metrics)
        if run.eval_project_id:
            final.update(_held_out(run, result))
        directory = _save(run, result, config, final, sizes=(len(train), len(validation)))
    except Exception as exc:
        logger.exception("reward run %s failed", run.pk)
        run_finish(RewardModelRun, run.pk, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return None
    run_heartbeat(
        RewardModelRun,
        run.pk,
        final_metrics=final,
        metrics=progress.series,
        progress=1.0,
        checkpoint_dir=str(directory),
        device=str(getattr(result.model, "device", "")),
    )
    splits = {pair.key: "train" for pair in train}
    splits.update((pair.key, "validation") for pair in validation)
    return _Trained(result.model, result.tokenizer, splits)


def _label_and_finish(run: RewardModelRun, trained: _Trained, *, chunk_size: int) -> None:
    """Label the project with the trained model where it wants it, then finish the run: a
    failure while labelling fails the run with the reason, the checkpoint and the labels
    committed so far kept."""
    if ProjectScoring.objects.filter(
        project=run.project_id, label_with_reward_model=False
    ).exists():
        run_finish(RewardModelRun, run.pk, RunStatus.SUCCEEDED)
        return
    try:
        finished = reward_labels_write(
            run=run,
            model=trained.model,
            tokenizer=trained.tokenizer,
            splits=trained.splits,
            chunk_size=chunk_size,
        )
    except Exception as exc:
        logger.exception("reward run %s failed while labelling", run.pk)
        error = (
            f"labelling the project with the trained model failed: {type(exc).__name__}: {exc} "
            "(the checkpoint is saved; the labels written so far are kept)"
        )
        run_finish(RewardModelRun, run.pk, RunStatus.FAILED, error=error)
        return
    run_finish(RewardModelRun, run.pk, RunStatus.SUCCEEDED if finished else RunStatus.CANCELLED)


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


# --- labelling the project with the trained model ---


def reward_labels_write(
    *,
    run: RewardModelRun,
    model,
    tokenizer,
    splits: dict[int, str] | None = None,
    chunk_size: int = LABEL_CHUNK_SIZE,
) -> bool:
    """Label each comparison of the run's project that lacks the run's label with the model's
    preference, chunk by chunk; False where a cancel request stopped it.

    Each chunk's labels, their `labels_committed` news (origin "judge") and the run's
    labels_done commit together. Labels are upserts on (comparison, judge, version), so
    labelling twice changes nothing. Comparisons imported after it starts wait for the next run.
    `splits` says which comparisons the model trained or validated on (kept in raw_output:
    its agreement with their labels is not out-of-sample).
    """
    comparisons = Comparison.objects.filter(project=run.project_id)
    last_id = comparisons.aggregate(last=Max("id"))["last"] or 0
    todo = _unlabelled(run).filter(id__lte=last_id)
    total = comparisons.filter(id__lte=last_id).count()
    done = total - todo.count()
    run_heartbeat(RewardModelRun, run.pk, labels_total=total, labels_done=done)
    after = 0
    while chunk := list(
        todo.filter(id__gt=after)
        .order_by("id")
        .values_list("id", "prompt", "response_a", "response_b")[:chunk_size]
    ):
        if RewardModelRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
            return False
        labels = _reward_labels(run, model, tokenizer, chunk, splits or {})
        done += len(labels)
        with transaction.atomic():
            LMLabel.objects.bulk_create(labels, ignore_conflicts=True)
            project_labels_changed(
                project_id=run.project_id,
                new_labels=len(labels),
                origin="judge",
                judge_name=REWARD_MODEL_JUDGE,
            )
            run_heartbeat(RewardModelRun, run.pk, labels_done=done)
        after = chunk[-1][0]
    return True


def _unlabelled(run: RewardModelRun):
    labelled = LMLabel.objects.filter(
        comparison=OuterRef("pk"),
        judge_name=REWARD_MODEL_JUDGE,
        judge_version=run.judge_version,
    )
    return Comparison.objects.filter(project=run.project_id).filter(~Exists(labelled))


def _reward_labels(
    run: RewardModelRun, model, tokenizer, chunk: list[tuple], splits: dict[int, str]
) -> list[LMLabel]:
    from scoring.training.checkpoint import score_texts

    texts = [(prompt, a) for _, prompt, a, _ in chunk] + [(prompt, b) for _, prompt, _, b in chunk]
    # Training fitted a batch's 2 * batch_size sequences with their gradients; scoring needs less.
    rewards = score_texts(
        model, tokenizer, texts, max_length=run.max_length, batch_size=2 * run.batch_size
    )
    n = len(chunk)
    return [
        _reward_label(run, pk, rewards[i], rewards[n + i], splits.get(pk, "unseen"))
        for i, (pk, *_) in enumerate(chunk)
    ]


def _reward_label(
    run: RewardModelRun, comparison_id: int, reward_a: float, reward_b: float, split: str
) -> LMLabel:
    p_a = _sigmoid(reward_a - reward_b)
    if abs(p_a - 0.5) < REWARD_TIE_THRESHOLD:
        choice = Choice.TIE
    else:
        choice = Choice.A if p_a > 0.5 else Choice.B
    # A reward model scores each response alone: no shown order, so no per-order figures.
    return LMLabel(
        comparison_id=comparison_id,
        judge_name=REWARD_MODEL_JUDGE,
        judge_version=run.judge_version,
        choice=choice,
        strength=Strength.UNKNOWN,
        p_a=p_a,
        raw_output={"reward_a": reward_a, "reward_b": reward_b, "split": split},
        source=LabelSource.PLATFORM,
    )


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


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
    preference (p_a = sigmoid(r_a - r_b)). Any run with a checkpoint scores, also one that
    failed while labelling its project."""
    from scoring.training.checkpoint import load_reward_model, score_texts

    if not run.checkpoint_dir:
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
        out.append(
            {
                **{k: v for k, v in item.items() if k in ("external_id", "id")},
                "reward_a": r_a,
                "reward_b": r_b,
                "p_a": _sigmoid(r_a - r_b),
                "preferred": "A" if r_a > r_b else "B" if r_b > r_a else "tie",
            }
        )
    return out
