"""The project's scoring fields now live in scoring.ProjectScoring (scoring 0006 copied them and
runs before this)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0007_lmlabel'),
    ]

    operations = [
        migrations.RemoveField(model_name='project', name='judges'),
        migrations.RemoveField(model_name='project', name='labels_since_retrain'),
        migrations.RemoveField(model_name='project', name='retrain_every'),
    ]
