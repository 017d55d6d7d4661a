"""`Comparison.human_load` is renamed `slots_taken` (what it counts: labels plus open label
leases); ImportJob takes the common fields of background runs (annotator.background)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0008_project_scoring_moved'),
    ]

    operations = [
        # Renaming the column keeps the index and the check built on it (both databases
        # follow a column's rename); only their definitions in the state change.
        migrations.RenameField(model_name='comparison', old_name='human_load', new_name='slots_taken'),
        migrations.AlterField(
            model_name='comparison',
            name='slots_taken',
            field=models.PositiveIntegerField(default=0, help_text='Of labels_per_item, the slots taken: human labels plus open label leases.'),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name='comparison', name='comparison_human_queue'),
                migrations.AddIndex(
                    model_name='comparison',
                    index=models.Index(models.F('project'), models.OrderBy(models.F('slots_taken'), descending=True), models.F('id'), condition=models.Q(('is_gold', False), ('route', 'human')), name='comparison_human_queue'),
                ),
                migrations.RemoveConstraint(model_name='comparison', name='comparison_load_covers_labels'),
                migrations.AddConstraint(
                    model_name='comparison',
                    constraint=models.CheckConstraint(condition=models.Q(('slots_taken__gte', models.F('labels_done'))), name='comparison_load_covers_labels'),
                ),
            ],
        ),
        migrations.AddField(
            model_name='importjob',
            name='error',
            field=models.TextField(blank=True, help_text='Why the run failed, if it did.'),
        ),
        migrations.AddField(
            model_name='importjob',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, help_text='Last sign of life of the worker executing it.', null=True),
        ),
        migrations.AlterField(
            model_name='importjob',
            name='errors',
            field=models.JSONField(blank=True, default=list, help_text='FILE:LINE: field: problem'),
        ),
        migrations.AlterField(
            model_name='importjob',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=10),
        ),
        migrations.RemoveConstraint(model_name='importjob', name='importjob_status_valid'),
        migrations.AddConstraint(
            model_name='importjob',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['queued', 'running', 'succeeded', 'failed', 'cancelled'])), name='importjob_status_valid'),
        ),
    ]
