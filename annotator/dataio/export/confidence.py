"""The export's optional `posterior` / `label_confidence` fields and its `min_confidence` filter.

The Dawid-Skene posteriors are read once from the project's cached analytics, keyed by
comparison id (a sorted id array looked up per batch).
"""

from annotator.models import Project


class ExportConfidence:
    """The posteriors of a project's comparisons and the smallest label_confidence kept."""

    def __init__(self, posteriors, minimum: float | None):
        self.posteriors, self.minimum = posteriors, minimum

    @classmethod
    def load(
        cls, project: Project, wanted: bool, minimum: float | None
    ) -> "ExportConfidence | None":
        """None when the export has neither the fields nor the filter."""
        if not wanted and minimum is None:
            return None
        from annotator.analytics.report import project_posteriors

        posteriors, _ = project_posteriors(project=project)
        if posteriors is None:
            raise ValueError(
                f"project {project.slug!r} has no analytics report yet "
                "(run `manage.py project_report` first)"
            )
        return cls(posteriors, minimum)

    def batch(self, rows: list[tuple]) -> dict[int, list[float]]:
        """comparison id -> its posterior [A, B, tie], for the batch's comparisons that have one."""
        ids = [row[0] for row in rows]
        found = self.posteriors.lookup(ids)
        return {
            pk: [round(float(p), 4) for p in probabilities]
            for pk, probabilities in zip(ids, found, strict=True)
            if probabilities[0] == probabilities[0]  # not NaN
        }

    def keeps(self, value: float | None) -> bool:
        return self.minimum is None or (value is not None and value >= self.minimum)


def posterior_dict(posterior: list[float] | None) -> dict | None:
    if posterior is None:
        return None
    return {"A": posterior[0], "B": posterior[1], "tie": posterior[2]}
