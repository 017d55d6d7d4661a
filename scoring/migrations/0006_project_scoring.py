"""A project's scoring settings (its judges, the retrain threshold and counter) move from the
project row to ProjectScoring, owned by this app. Existing values are copied before annotator
0008 drops the old fields."""

import django.db.models.deletion
from django.db import migrations, models


def settings_copy(apps, schema_editor):
    Project = apps.get_model("annotator", "Project")
    ProjectScoring = apps.get_model("scoring", "ProjectScoring")
    for project in Project.objects.all().iterator():
        settings = ProjectScoring.objects.create(
            project=project,
            retrain_every=project.retrain_every,
            labels_since_retrain=project.labels_since_retrain,
        )
        settings.judges.set(project.judges.all())


def settings_restore(apps, schema_editor):
    ProjectScoring = apps.get_model("scoring", "ProjectScoring")
    for settings in ProjectScoring.objects.select_related("project").iterator():
        project = settings.project
        project.retrain_every = settings.retrain_every
        project.labels_since_retrain = settings.labels_since_retrain
        project.save(update_fields=["retrain_every", "labels_since_retrain"])
        project.judges.set(settings.judges.all())


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0007_lmlabel'),
        ('scoring', '0005_lmlabel_moved'),
    ]
    # The copy needs the old fields, which annotator 0008 removes.
    run_before = [
        ('annotator', '0008_project_scoring_moved'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProjectScoring',
            fields=[
                ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='scoring', serialize=False, to='annotator.project')),
                ('retrain_every', models.PositiveIntegerField(default=0, help_text='Train a new reward model after this many new labels (0: never by itself).')),
                ('labels_since_retrain', models.PositiveIntegerField(default=0, editable=False)),
                ('judges', models.ManyToManyField(blank=True, help_text='The judges that label this project; the project names its primary one.', related_name='project_settings', to='scoring.judge')),
            ],
            options={
                'verbose_name': 'project scoring settings',
                'verbose_name_plural': 'project scoring settings',
                'ordering': ['project_id'],
            },
        ),
        migrations.RunPython(settings_copy, settings_restore),
    ]
