"""The live routing policy's settings form, shared by the project page and the admin. It
validates; `routing.live.policy_save` writes (and refuses again what the form let through in a
race)."""

from django import forms
from django.core.validators import MinValueValidator

from annotator.models import Project
from routing.live import POLICY_FIELDS, budget_in_labels
from routing.models import PolicyStrategy, RouterPrior, RoutingPolicy
from routing.priors import PriorError, prior_model


class PriorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: RouterPrior) -> str:
        auc = obj.metrics.get("auc") if isinstance(obj.metrics, dict) else None
        return f"{obj}" + (f" (AUC {auc:.3f})" if isinstance(auc, int | float) else "")


class PolicyForm(forms.ModelForm):
    strategy = forms.ChoiceField(
        choices=PolicyStrategy.choices,
    )
    prior = PriorChoiceField(
        queryset=RouterPrior.objects.defer("model"),
        required=False,
        empty_label="none",
        help_text="A router trained on other projects (manage.py train_router) for the first "
        "rounds.",
    )

    class Meta:
        model = RoutingPolicy
        fields = list(POLICY_FIELDS)
        labels = {"budget_unit": "Budget unit", "max_labels_per_item": "Max labels per item"}
        help_texts = {
            "budget": "The total human budget, in the unit below; a comparison costs the "
            "project's labels per item.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("batch_size", "refit_every"):  # the database refuses 0
            field = self.fields[name]
            field.min_value = 1
            field.validators.append(MinValueValidator(1))
            field.widget.attrs["min"] = 1

    def clean_prior(self) -> RouterPrior | None:
        prior = self.cleaned_data.get("prior")
        if prior is not None:
            try:
                prior_model(RouterPrior.objects.get(pk=prior.pk))
            except PriorError as exc:
                raise forms.ValidationError(str(exc)) from None
        return prior

    def clean(self):
        data = super().clean()
        project = self._project(data)
        committed = self.instance.labels_committed
        if project is not None and data.get("budget") is not None and "budget_unit" in data:
            # policy_save refuses it too; checked here to show it on the field.
            labels = budget_in_labels(
                budget=data["budget"],
                unit=data["budget_unit"],
                labels_per_item=project.labels_per_item,
            )
            if labels < committed:
                self.add_error(
                    "budget",
                    f"the budget ({labels} labels) is below what is already "
                    f"committed ({committed} labels)",
                )
        return data

    def _project(self, data: dict) -> Project | None:
        if self.instance.project_id:
            return self.instance.project
        return data.get("project")
