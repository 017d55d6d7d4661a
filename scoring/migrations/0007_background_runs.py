"""JudgeRun and RewardModelRun take the common fields of background runs
(annotator.background): one status vocabulary, one status check each."""

from django.db import migrations, models

STATUSES = [('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')]


class Migration(migrations.Migration):

    dependencies = [
        ('scoring', '0006_project_scoring'),
    ]

    operations = [
        migrations.AlterField(
            model_name='judgerun',
            name='error',
            field=models.TextField(blank=True, help_text='Why the run failed, if it did.'),
        ),
        migrations.AlterField(
            model_name='judgerun',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, help_text='Last sign of life of the worker executing it.', null=True),
        ),
        migrations.AlterField(
            model_name='judgerun',
            name='status',
            field=models.CharField(choices=STATUSES, default='queued', max_length=10),
        ),
        migrations.AlterField(
            model_name='rewardmodelrun',
            name='error',
            field=models.TextField(blank=True, help_text='Why the run failed, if it did.'),
        ),
        migrations.AlterField(
            model_name='rewardmodelrun',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, help_text='Last sign of life of the worker executing it.', null=True),
        ),
        migrations.RemoveConstraint(model_name='judgerun', name='judgerun_status_valid'),
        migrations.AddConstraint(
            model_name='judgerun',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['queued', 'running', 'succeeded', 'failed', 'cancelled'])), name='judgerun_status_valid'),
        ),
        migrations.RemoveConstraint(model_name='rewardmodelrun', name='rewardrun_status_valid'),
        migrations.AddConstraint(
            model_name='rewardmodelrun',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['queued', 'running', 'succeeded', 'failed', 'cancelled'])), name='rewardmodelrun_status_valid'),
        ),
    ]
