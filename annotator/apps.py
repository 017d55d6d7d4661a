from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from annotator.analytics.receivers import analytics_on_labels_committed
        from annotator.signals import labels_committed

        labels_committed.connect(analytics_on_labels_committed, dispatch_uid="analytics-refresh")
