"""Computing and storing the text features of a project's comparisons (a Celery task's body).

Stored per comparison under the project's feature-set version: FEATURE_VERSION (bump it whenever
a feature's definition changes, so old rows are recomputed instead of mixed), followed by
"+<tagger version>" when the project has an LM tagger. Values: lengths, ROUGE-1 F, the MiniLM
cosine similarity and its length-penalised form, entity/number overlap. Tags: descriptive tags
from `metadata` and, with a tagger, its answers as "dimension=value" (routing.tagging).
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import Comparison, Project
from routing.models import ComparisonFeatures, ProjectTagger, Tagger
from routing.tagging import UNKNOWN
from routing.text_features import text_features

logger = logging.getLogger(__name__)

FEATURE_VERSION = "f1-minilm"
CHUNK = 256


def project_tagger(project: Project) -> Tagger | None:
    link = ProjectTagger.objects.filter(project=project).select_related("tagger").first()
    return link.tagger if link else None


def feature_version(tagger: Tagger | None) -> str:
    """The feature-set version of rows computed with `tagger` (None: no LM tags)."""
    return FEATURE_VERSION if tagger is None else f"{FEATURE_VERSION}+{tagger.version}"


def project_feature_version(project: Project) -> str:
    """The feature-set version the project's rows must have to be current."""
    return feature_version(project_tagger(project))


@dataclass
class FeaturesComputed:
    computed: int  # comparisons whose row was written
    version: str
    tagger: str = ""  # the tagger's name, empty without one
    unknown: dict[str, int] = field(default_factory=dict)  # dimension -> answers not valid


def metadata_tags(metadata: dict) -> list[str]:
    """'key=value' tags from the metadata keys named in ROUTING_TAG_KEYS (source, category,
    subject...). Lists give one tag per element; long values are cut."""
    tags = []
    if not isinstance(metadata, dict):
        return tags
    for key in settings.ROUTING_TAG_KEYS:
        value = metadata.get(key)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None or v == "" or isinstance(v, dict | list):
                continue
            tags.append(f"{key}={str(v)[:80]}")
    return tags


def features_for_texts(rows: list[tuple[str, str, str]]) -> list[dict[str, float | None]]:
    """Feature values for (prompt, A, B) triples, embeddings batched over all of them."""
    from routing.embeddings import pair_cosines

    values = [text_features(p, a, b) for p, a, b in rows]
    cosines = pair_cosines([a for _, a, _ in rows], [b for _, _, b in rows])
    for value, cosine in zip(values, cosines, strict=True):
        value["cosine"] = cosine
        value["cosine_lenpen"] = cosine * value["length_penalty"]
    return values


def _stored_values(ids: list[int]) -> dict[int, dict]:
    """Text feature values already stored for these comparisons under the same text-feature
    version (e.g. by another tagger): they do not depend on the tags, so they are reused."""
    return dict(
        ComparisonFeatures.objects.filter(comparison_id__in=ids)
        .filter(Q(version=FEATURE_VERSION) | Q(version__startswith=FEATURE_VERSION + "+"))
        .order_by("comparison_id", "-computed_at")
        .values_list("comparison_id", "values")
    )


def features_compute(*, project: Project, recompute: bool = False) -> FeaturesComputed:
    """Compute and store the features of the project's comparisons that have none of the
    project's current feature-set version (all of them with `recompute`), with the LM tags of
    the project's tagger if it has one. Idempotent: rows are upserted on (comparison, version),
    chunk by chunk, each chunk in its own transaction. Text values stored under another tagger's
    version are reused unless `recompute`. Answers a tagger could not give are stored as
    "dimension=unknown" and counted."""
    tagger = project_tagger(project)
    version = feature_version(tagger)
    result = FeaturesComputed(computed=0, version=version, tagger=tagger.name if tagger else "")
    pending = Comparison.objects.filter(project=project)
    if not recompute:
        pending = pending.exclude(routing_features__version=version)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    if not ids:
        return result
    backend = None
    if tagger is not None:
        from routing.tagging import tagger_backend

        backend = tagger_backend(tagger)
    for start in range(0, len(ids), CHUNK):
        chunk = list(
            Comparison.objects.filter(id__in=ids[start : start + CHUNK])
            .order_by("id")
            .values_list("id", "prompt", "response_a", "response_b", "metadata")
        )
        values = _chunk_values(chunk, recompute=recompute)
        tags = _chunk_tags(chunk, backend, result.unknown)
        _rows_store(chunk, values, tags, version)
        result.computed += len(chunk)
        logger.info(
            "routing features %s: %s/%s comparisons of %s",
            version,
            result.computed,
            len(ids),
            project.slug,
        )
    if result.unknown:
        logger.warning("tagger %s: unknown answers per dimension %s", result.tagger, result.unknown)
    return result


def _chunk_values(chunk: list[tuple], *, recompute: bool) -> dict[int, dict]:
    """comparison id -> text feature values: the stored ones reused, the missing computed."""
    stored = {} if recompute else _stored_values([row[0] for row in chunk])
    missing = [row for row in chunk if row[0] not in stored]
    if missing:
        fresh = features_for_texts([(p, a, b) for _, p, a, b, _ in missing])
        stored.update(zip((row[0] for row in missing), fresh, strict=True))
    return stored


def _chunk_tags(chunk: list[tuple], backend, unknown: dict[str, int]) -> list[list[str]]:
    """Each comparison's metadata tags, then its tagger answers as "dimension=value" (the
    answers the tagger could not give counted in `unknown`)."""
    tags = [metadata_tags(metadata) for *_, metadata in chunk]
    if backend is None:
        return tags
    answers = backend.answers([prompt for _, prompt, *_ in chunk])
    for row_tags, row_answers in zip(tags, answers, strict=True):
        for name, value in row_answers.items():
            row_tags.append(f"{name}={value}")
            if value == UNKNOWN:
                unknown[name] = unknown.get(name, 0) + 1
    return tags


def _rows_store(
    chunk: list[tuple], values: dict[int, dict], tags: list[list[str]], version: str
) -> None:
    """Upsert the chunk's rows on (comparison, version), in one transaction."""
    now = timezone.now()
    rows = [
        ComparisonFeatures(
            comparison_id=pk,
            version=version,
            values=values[pk],
            tags=row_tags,
            computed_at=now,
        )
        for (pk, *_), row_tags in zip(chunk, tags, strict=True)
    ]
    with transaction.atomic():
        ComparisonFeatures.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["comparison", "version"],
            update_fields=["values", "tags", "computed_at"],
        )
