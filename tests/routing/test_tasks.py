import pytest
from django.db import transaction

from routing.features import FEATURE_VERSION
from routing.models import ComparisonFeatures
from routing.tasks import features_compute_task
from tests.conftest import wait_for
from tests.routing.conftest import comparison_record


@pytest.mark.slow
def test_a_worker_computes_and_stores_features(
    routing_project, import_records, celery_worker_process
):
    records = [comparison_record(i) for i in range(5)]
    records[0]["metadata"] = {"source": "LLMBar", "subset": "Natural", "index": 3}
    import_records(records)
    with transaction.atomic():
        features_compute_task.delay_on_commit(routing_project.pk)
    wait_for(
        lambda: ComparisonFeatures.objects.count() == 5,
        timeout=180,
        what="features from the worker",
    )
    row = ComparisonFeatures.objects.get(comparison__external_id="c000")
    assert row.version == FEATURE_VERSION
    # Only the configured metadata keys become tags; the index does not.
    assert sorted(row.tags) == ["source=LLMBar", "subset=Natural"]
    assert set(row.values) >= {"rouge1_f", "cosine", "cosine_lenpen", "entity_iou", "len_diff"}
