"""Computing and storing the text features of a project's comparisons (a Celery task's body).

Stored per comparison under FEATURE_VERSION (bump it whenever a feature's definition changes, so
old rows are recomputed instead of mixed): lengths, ROUGE-1 F, the MiniLM cosine similarity and
its length-penalised form, entity/number overlap, and descriptive tags from `metadata`.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotator.models import Comparison, Project
from routing.models import ComparisonFeatures
from routing.text_features import text_features

logger = logging.getLogger(__name__)

FEATURE_VERSION = "f1-minilm"
CHUNK = 256


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


def features_compute(*, project: Project, recompute: bool = False) -> int:
    """Compute and store the features of the project's comparisons that have none of the
    current version (all of them with `recompute`). Idempotent: rows are upserted on
    (comparison, version), chunk by chunk, each chunk in its own transaction. Returns how many
    comparisons were computed."""
    pending = Comparison.objects.filter(project=project)
    if not recompute:
        pending = pending.exclude(routing_features__version=FEATURE_VERSION)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    done = 0
    for start in range(0, len(ids), CHUNK):
        chunk = list(
            Comparison.objects.filter(id__in=ids[start : start + CHUNK])
            .order_by("id")
            .values_list("id", "prompt", "response_a", "response_b", "metadata")
        )
        values = features_for_texts([(p, a, b) for _, p, a, b, _ in chunk])
        now = timezone.now()
        rows = [
            ComparisonFeatures(
                comparison_id=pk,
                version=FEATURE_VERSION,
                values=value,
                tags=metadata_tags(metadata),
                computed_at=now,
            )
            for (pk, _, _, _, metadata), value in zip(chunk, values, strict=True)
        ]
        with transaction.atomic():
            ComparisonFeatures.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["comparison", "version"],
                update_fields=["values", "tags", "computed_at"],
            )
        done += len(rows)
        logger.info("routing features: %s/%s comparisons of %s", done, len(ids), project.slug)
    return done
