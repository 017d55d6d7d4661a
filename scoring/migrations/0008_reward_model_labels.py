"""A project's reward model labels its comparisons after each run (judge "reward-model", a
name no judge configuration may take); the run counts the labels it writes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0007_background_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="projectscoring",
            name="label_with_reward_model",
            field=models.BooleanField(
                default=True,
                help_text="After each reward-model run, label every comparison with the new model (judge 'reward-model'): the router reads its preference and its agreement with the primary judge.",
            ),
        ),
        migrations.AddField(
            model_name="rewardmodelrun",
            name="labels_done",
            field=models.PositiveIntegerField(
                default=0, help_text="Comparisons that have the trained model's label."
            ),
        ),
        migrations.AddField(
            model_name="rewardmodelrun",
            name="labels_total",
            field=models.PositiveIntegerField(
                default=0, help_text="Comparisons to label with the trained model (0: none)."
            ),
        ),
        migrations.AddConstraint(
            model_name="judge",
            constraint=models.CheckConstraint(
                condition=models.Q(("name", "reward-model"), _negated=True),
                name="judge_name_not_reserved",
            ),
        ),
        migrations.AddConstraint(
            model_name="rewardmodelrun",
            constraint=models.CheckConstraint(
                condition=models.Q(("labels_done__lte", models.F("labels_total"))),
                name="rewardrun_labels_done_le_total",
            ),
        ),
    ]
