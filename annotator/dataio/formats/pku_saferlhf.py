"""`pku-saferlhf`: PKU-Alignment/PKU-SafeRLHF, two responses to a prompt with a helpfulness
preference (`better_response_id`) and a harmlessness one (`safer_response_id`).

`response_0` is A and `response_1` B, as published; their generating models
(`response_*_source`) are model A and B. `better_response_id` is the overall label and
`safer_response_id` the harmless one, of unknown strength, in one human label named after the
file. With `--label-source lm:JUDGE` the overall preference is an LM label of JUDGE (which has no
aspects), and the safer side is kept in metadata as `safer_response` (A or B). Safety flags, harm
categories, severity levels and the other fields stay in metadata as published.
"""

from annotator.dataio.formats.common import (
    Format,
    ReadOptions,
    pair_external_id,
    per_record,
)
from annotator.dataio.formats.dataset_fields import kind, number_read, others, text_read
from annotator.dataio.records import FieldError

_IDS = ("better_response_id", "safer_response_id")
_MODELS = ("response_0_source", "response_1_source")
_USED = frozenset({"prompt", "response_0", "response_1", *_IDS, *_MODELS})


def _models(obj: dict, errors: list[FieldError]) -> list[str]:
    models = []
    for key in _MODELS:
        value = obj.get(key) or ""
        if not isinstance(value, str):
            errors.append(FieldError(key, f"must be a string, not {kind(value)}"))
        models.append(value if isinstance(value, str) else "")
    return models


def pku_native(obj: dict, options: ReadOptions) -> tuple[dict | None, list[FieldError]]:
    errors: list[FieldError] = []
    prompt = text_read(obj, "prompt", errors)
    response_0 = text_read(obj, "response_0", errors)
    response_1 = text_read(obj, "response_1", errors)
    better, safer = (number_read(obj, key, errors, low=0, high=1, integral=True) for key in _IDS)
    models = _models(obj, errors)
    if errors:
        return None, errors
    overall, harmless = ("A" if better == 0 else "B"), ("A" if safer == 0 else "B")
    native = {
        "external_id": f"pku-{pair_external_id(prompt, response_0, response_1)}",
        "prompt": prompt,
        "response_a": response_0,
        "response_b": response_1,
        "model_a": models[0],
        "model_b": models[1],
        "metadata": others(obj, _USED),
    }
    if options.lm_judge:
        native["lm_labels"] = [{"judge": options.lm_judge, "overall": overall}]
        native["metadata"]["safer_response"] = harmless
    else:
        native["human_labels"] = [
            {"annotator": options.label_name, "overall": overall, "harmless": harmless}
        ]
    return native, []


read_pku_saferlhf = per_record(pku_native)


FORMAT = Format(
    name="pku-saferlhf",
    read=read_pku_saferlhf,
    keys=frozenset({"prompt", "response_0", "response_1", *_IDS}),
    summary=(
        "PKU-Alignment/PKU-SafeRLHF: better_response_id the overall label, safer_response_id "
        "the harmless one, safety flags and harm categories in metadata"
    ),
)
