from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring (LM judges, reward models)"

    def ready(self) -> None:
        from annotator.api.project_settings import project_settings_section_register
        from annotator.final_labels import derived_judge_register
        from annotator.signals import labels_committed
        from scoring.api.project_settings import SCORING_SECTION
        from scoring.models import REWARD_MODEL_JUDGE
        from scoring.receivers import retrain_on_labels_committed

        labels_committed.connect(retrain_on_labels_committed, dispatch_uid="reward-retrain")
        project_settings_section_register(SCORING_SECTION)
        # The reward model labels from the project's own labels: never the primary by count.
        derived_judge_register(REWARD_MODEL_JUDGE)
