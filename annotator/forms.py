"""The labelling form: validates what the annotator sent, in the terms they saw (1-5)."""

from django import forms

from annotator.assignment import SKIP_REASONS, LabelAnswer
from annotator.labels import ASPECTS, REASONS, Confidence
from annotator.models import Project

SCALE = [
    ("1", "First clearly better"),
    ("2", "First slightly better"),
    ("3", "Tie"),
    ("4", "Second slightly better"),
    ("5", "Second clearly better"),
]
ASPECT_LABELS = {
    "overall": "Overall",
    "helpful": "Helpfulness",
    "truthful": "Truthfulness",
    "harmless": "Harmlessness",
}
MAX_SECONDS = 24 * 3600


def reason_choices(project: Project) -> list[tuple[str, list[tuple[str, str]]]]:
    """Reasons grouped by aspect: the asked aspects', or helpfulness' when only overall is asked."""
    aspects = [a for a in ASPECTS if getattr(project, f"ask_{a}")] or ["helpful"]
    return [
        (
            ASPECT_LABELS[aspect],
            [(reason, reason.replace("-", " ").capitalize()) for reason in REASONS[aspect]],
        )
        for aspect in aspects
    ]


class LabelForm(forms.Form):
    overall = forms.TypedChoiceField(
        choices=SCALE, coerce=int, widget=forms.RadioSelect, label="Overall"
    )
    confidence = forms.ChoiceField(
        choices=[("", "—"), *Confidence.choices], required=False, label="Confidence"
    )
    reasons = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple, label="Reasons"
    )
    rationale = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Rationale",
    )
    time_spent_s = forms.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_SECONDS,
        widget=forms.HiddenInput,
        label="Time spent (seconds)",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.aspects = [a for a in ASPECTS if getattr(project, f"ask_{a}")]
        for aspect in self.aspects:
            self.fields[aspect] = forms.TypedChoiceField(
                choices=SCALE,
                coerce=int,
                widget=forms.RadioSelect,
                required=project.require_aspects,
                empty_value=None,
                label=ASPECT_LABELS[aspect],
            )
        self.fields["reasons"].choices = reason_choices(project)
        self.fields["confidence"].required = project.require_confidence
        self.fields["rationale"].required = project.require_rationale

    def display(self) -> dict:
        """What the template needs to write the inputs itself: Django's widget rendering runs a
        template per radio button, which was the slowest part of serving a comparison."""

        def value(name):
            return str(self[name].value() or "") if self.is_bound else ""

        def errors(name):
            return list(self.errors.get(name, [])) if self.is_bound else []

        scales = [
            {
                "name": name,
                "label": ASPECT_LABELS[name],
                "required": self.fields[name].required,
                "value": value(name),
                "errors": errors(name),
                "options": [(v, text, f"id_{name}_{v}") for v, text in SCALE],
            }
            for name in ("overall", *self.aspects)
        ]
        chosen = set(self["reasons"].value() or []) if self.is_bound else set()
        reasons = [
            (group, [(v, text, v in chosen, f"id_reason_{v}") for v, text in options])
            for group, options in self.fields["reasons"].choices
        ]
        return {
            "scales": scales,
            "confidence": {
                "choices": self.fields["confidence"].choices,
                "value": value("confidence"),
                "required": self.fields["confidence"].required,
                "errors": errors("confidence"),
            },
            "reasons": reasons,
            "reason_errors": errors("reasons"),
            # Hidden (the page measures it): its problem is shown above the submit button.
            "time_spent_errors": errors("time_spent_s"),
            "rationale": {
                "value": value("rationale"),
                "required": self.fields["rationale"].required,
                "errors": errors("rationale"),
            },
        }

    def error_summary(self) -> str:
        """The banner over an invalid form: which fields are wrong, by the names shown."""
        names = [self.fields[name].label or name for name in self.errors if name in self.fields]
        return "Please complete the highlighted fields: " + ", ".join(names) + "."

    def answer(self) -> LabelAnswer:
        data = self.cleaned_data
        return LabelAnswer(
            overall=data["overall"],
            aspects={aspect: data.get(aspect) for aspect in self.aspects},
            confidence=data.get("confidence") or None,
            reasons=list(data.get("reasons") or []),
            rationale=data.get("rationale") or "",
            time_spent_s=data.get("time_spent_s"),
        )


class SkipForm(forms.Form):
    reason = forms.ChoiceField(choices=[(r, r) for r in SKIP_REASONS], label="Why skip?")
