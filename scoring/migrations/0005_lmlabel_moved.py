"""LMLabel now belongs to the base app (annotator 0007 took over its table): drop it from this
app's state, and hand its content type (and so its permissions) to annotator."""

from django.db import migrations


def content_type_to_annotator(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="annotator", model="lmlabel").exists():
        ContentType.objects.filter(app_label="scoring", model="lmlabel").update(
            app_label="annotator"
        )


def content_type_to_scoring(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="scoring", model="lmlabel").exists():
        ContentType.objects.filter(app_label="annotator", model="lmlabel").update(
            app_label="scoring"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0007_lmlabel'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('scoring', '0004_judge_batch_size_help'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='LMLabel')],
        ),
        migrations.RunPython(content_type_to_annotator, content_type_to_scoring),
    ]
