from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing (human vs LM)"

    def ready(self) -> None:
        from annotator.signals import labels_committed
        from routing.receivers import policy_on_labels_committed

        labels_committed.connect(policy_on_labels_committed, dispatch_uid="routing-policy")
