"""LM-judge labels. The judge configuration and runs join them in the judge issue."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotator.labels import Choice, LabelSource, Strength


def _probability(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 0.0, f"{field}__lte": 1.0})


class LMLabel(models.Model):
    """One judge version's position-debiased verdict on one comparison, in canonical A/B terms."""

    comparison = models.ForeignKey(
        "annotator.Comparison",
        on_delete=models.CASCADE,
        related_name="lm_labels",
        db_index=False,  # the (comparison, judge, version) unique index leads with it
    )
    judge_name = models.CharField(max_length=200)
    judge_version = models.CharField(max_length=200, blank=True)
    choice = models.CharField(max_length=3, choices=Choice.choices)
    strength = models.CharField(max_length=10, choices=Strength.choices)
    p_a = models.FloatField(
        null=True, blank=True, help_text="Probability that A is better, both orders combined."
    )
    p_a_ab = models.FloatField(null=True, blank=True, help_text="P(A better) with A shown first.")
    p_a_ba = models.FloatField(null=True, blank=True, help_text="P(A better) with B shown first.")
    position_consistent = models.BooleanField(
        null=True, blank=True, help_text="Whether both shown orders picked the same response."
    )
    rationale = models.TextField(blank=True)
    raw_output = models.JSONField(default=dict, blank=True)
    source = models.CharField(
        max_length=10, choices=LabelSource.choices, default=LabelSource.PLATFORM
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "LM label"
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "judge_name", "judge_version"],
                name="lmlabel_one_per_judge_version",
            ),
            models.CheckConstraint(condition=~Q(judge_name=""), name="lmlabel_judge_named"),
            models.CheckConstraint(
                condition=Q(choice__in=Choice.values), name="lmlabel_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__in=Strength.values), name="lmlabel_strength_valid"
            ),
            models.CheckConstraint(
                condition=~Q(choice=Choice.TIE) | Q(strength=Strength.UNKNOWN),
                name="lmlabel_tie_has_no_strength",
            ),
            models.CheckConstraint(condition=_probability("p_a"), name="lmlabel_p_a_range"),
            models.CheckConstraint(condition=_probability("p_a_ab"), name="lmlabel_p_a_ab_range"),
            models.CheckConstraint(condition=_probability("p_a_ba"), name="lmlabel_p_a_ba_range"),
            models.CheckConstraint(
                condition=Q(source__in=LabelSource.values), name="lmlabel_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id} by {self.judge_name}@{self.judge_version}: {self.choice}"
