from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring (LM judges, reward models)"

    def ready(self) -> None:
        from annotator.api.project_settings import project_settings_section_register
        from annotator.signals import labels_committed
        from scoring.api.project_settings import SCORING_SECTION
        from scoring.receivers import retrain_on_labels_committed

        labels_committed.connect(retrain_on_labels_committed, dispatch_uid="reward-retrain")
        project_settings_section_register(SCORING_SECTION)
