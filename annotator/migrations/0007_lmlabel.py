"""LMLabel moves from scoring to the base app: the same table, renamed, with no data copied.

The table was created by scoring 0001-0002, which run before this (annotator 0003 depends on
scoring 0002). scoring 0005 drops the model from scoring's state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0006_project_analytics'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='LMLabel',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('judge_name', models.CharField(max_length=200)),
                        ('judge_version', models.CharField(blank=True, max_length=200)),
                        ('choice', models.CharField(choices=[('A', 'A is better'), ('B', 'B is better'), ('tie', 'Tie')], max_length=3)),
                        ('strength', models.CharField(choices=[('slightly', 'Slightly'), ('clearly', 'Clearly'), ('unknown', 'Unknown')], max_length=10)),
                        ('p_a', models.FloatField(blank=True, help_text='Probability that A is better, both orders combined.', null=True)),
                        ('p_a_ab', models.FloatField(blank=True, help_text='P(A better) with A shown first.', null=True)),
                        ('p_a_ba', models.FloatField(blank=True, help_text='P(A better) with B shown first.', null=True)),
                        ('position_consistent', models.BooleanField(blank=True, help_text='Whether both shown orders picked the same response.', null=True)),
                        ('rationale', models.TextField(blank=True)),
                        ('raw_output', models.JSONField(blank=True, default=dict)),
                        ('truncated', models.BooleanField(default=False, help_text="The responses were cut to fit the judge's input limit.")),
                        ('source', models.CharField(choices=[('platform', 'Labelled on the platform'), ('imported', 'Imported')], default='platform', max_length=10)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'verbose_name': 'LM label',
                        'ordering': ['id'],
                        'db_table': 'scoring_lmlabel',
                    },
                ),
                migrations.AddField(
                    model_name='lmlabel',
                    name='comparison',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lm_labels', to='annotator.comparison'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.UniqueConstraint(fields=('comparison', 'judge_name', 'judge_version'), name='lmlabel_one_per_judge_version'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('judge_name', ''), _negated=True), name='lmlabel_judge_named'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('choice__in', ['A', 'B', 'tie'])), name='lmlabel_choice_valid'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('strength__in', ['slightly', 'clearly', 'unknown'])), name='lmlabel_strength_valid'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('choice', 'tie'), _negated=True), ('strength', 'unknown'), _connector='OR'), name='lmlabel_tie_has_no_strength'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('p_a__isnull', True), models.Q(('p_a__gte', 0.0), ('p_a__lte', 1.0)), _connector='OR'), name='lmlabel_p_a_range'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('p_a_ab__isnull', True), models.Q(('p_a_ab__gte', 0.0), ('p_a_ab__lte', 1.0)), _connector='OR'), name='lmlabel_p_a_ab_range'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('p_a_ba__isnull', True), models.Q(('p_a_ba__gte', 0.0), ('p_a_ba__lte', 1.0)), _connector='OR'), name='lmlabel_p_a_ba_range'),
                ),
                migrations.AddConstraint(
                    model_name='lmlabel',
                    constraint=models.CheckConstraint(condition=models.Q(('source__in', ['platform', 'imported'])), name='lmlabel_source_valid'),
                ),
            ],
        ),
        # Only now, with the model in this app's state, can its table take this app's name.
        migrations.AlterModelTable(name='lmlabel', table=None),
    ]
