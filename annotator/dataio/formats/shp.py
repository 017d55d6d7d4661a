"""`shp`: stanfordnlp/SHP, two Reddit comments to one post, the collectively preferred one told by
`labels` (1: A, 0: B).

The post's `history` is the prompt, `human_ref_A` / `human_ref_B` are A and B as published (SHP
already randomised the order). The preference is a human label named after the file (or an LM
label with `--label-source lm:JUDGE`) of unknown strength: votes say which comment won, not by how
much (`score_A`, `score_B` and `score_ratio` stay in metadata with `post_id`, `domain`,
`upvote_ratio` and the rest). The id is `shp-<post_id>-<c_root_id_A>-<c_root_id_B>` (a post
has several pairs), or a hash of the texts where those are missing.
"""

from annotator.dataio.formats.common import (
    Format,
    ReadOptions,
    pair_external_id,
    per_record,
)
from annotator.dataio.formats.dataset_fields import (
    kind,
    number_read,
    others,
    preference_label,
    text_read,
)
from annotator.dataio.records import FieldError

_USED = frozenset({"history", "human_ref_A", "human_ref_B", "labels"})
_ID_PARTS = ("post_id", "c_root_id_A", "c_root_id_B")


def _external_id(obj: dict, texts: tuple[str, str, str], errors: list[FieldError]) -> str:
    parts = [obj.get(key) for key in _ID_PARTS]
    for key, part in zip(_ID_PARTS, parts, strict=True):
        if part is not None and not isinstance(part, str):
            errors.append(FieldError(key, f"must be a string, not {kind(part)}"))
    if all(isinstance(part, str) and part for part in parts):
        return "shp-" + "-".join(parts)
    return f"shp-{pair_external_id(*texts)}"


def shp_native(obj: dict, options: ReadOptions) -> tuple[dict | None, list[FieldError]]:
    errors: list[FieldError] = []
    history = text_read(obj, "history", errors)
    comment_a = text_read(obj, "human_ref_A", errors)
    comment_b = text_read(obj, "human_ref_B", errors)
    label = number_read(obj, "labels", errors, low=0, high=1, integral=True)
    external_id = _external_id(obj, (history, comment_a, comment_b), errors)
    if errors:
        return None, errors
    return {
        "external_id": external_id,
        "prompt": history,
        "response_a": comment_a,
        "response_b": comment_b,
        "metadata": others(obj, _USED),
        "lm_labels" if options.lm_judge else "human_labels": [
            preference_label(options, "A" if label == 1 else "B")
        ],
    }, []


read_shp = per_record(shp_native)


FORMAT = Format(
    name="shp",
    read=read_shp,
    keys=frozenset({"post_id", "history", "human_ref_A", "human_ref_B", "labels"}),
    summary=(
        "stanfordnlp/SHP: a Reddit post and two comments, the voters' preference (labels) a "
        "label of unknown strength, the scores in metadata"
    ),
)
