"""Dataset cards: the sections that describe a project's labels (the API's dataset card,
annotator.api.dataset_card, is made of them) and the `hf` export's README.md.

The `hf` card is what the Hugging Face Hub and `datasets` read: YAML front matter (licence,
size category, the features of the Parquet shards, the `default` config's data files, the split's
size) and prose: where the exported labels come from (humans or the LM judge), how far the human
votes agree, the project's own counts, the judges, and the columns.
"""

import json
from typing import TYPE_CHECKING

from django.apps import apps
from django.db import connection
from django.db.models import Count

from annotator.final_labels import final_label_counts, project_primary_judge
from annotator.models import Comparison, HumanLabel, LMLabel, Project

# pyarrow (~50 MB, 0.2 s to import) is loaded by the exports that write Parquet only: the API's
# dataset card needs none of it.
if TYPE_CHECKING:
    import pyarrow as pa

# Hugging Face's size categories: (upper bound, tag).
_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
# Arrow's names of the primitive types the exports write -> `datasets`' dtypes.
_DTYPES = {
    "string": "string",
    "double": "float64",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
}
_SOURCE_PROSE = {
    "final": "the final label: the majority of a comparison's human votes where it has any "
    "(a tied vote or a Tie majority gives no pair), else the latest label of the primary judge "
    "(a Tie gives no pair)",
    "human": "the majority of the human votes only (comparisons without one are left out)",
    "lm": "the primary judge's latest label only, even where humans voted (its Ties left out)",
}


def human_agreement(project: Project) -> tuple[int, float | None, int]:
    """(comparisons with 2+ human labels, mean share of votes for the most common overall choice,
    how many of them are unanimous), in one grouped query."""
    labels, comparisons = HumanLabel._meta.db_table, Comparison._meta.db_table
    sql = f"""
        SELECT COUNT(*), AVG(top * 1.0 / total), SUM(CASE WHEN top = total THEN 1 ELSE 0 END)
        FROM (
            SELECT comparison_id, MAX(n) AS top, SUM(n) AS total FROM (
                SELECT h.comparison_id, h.overall_choice, COUNT(*) AS n
                FROM {labels} h JOIN {comparisons} c ON c.id = h.comparison_id
                WHERE c.project_id = %s
                GROUP BY h.comparison_id, h.overall_choice
            ) per_choice
            GROUP BY comparison_id
            HAVING SUM(n) >= 2
        ) per_comparison
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        count, mean, unanimous = cursor.fetchone()
    return count or 0, (float(mean) if mean is not None else None), unanimous or 0


def _routing_run_line(project: Project) -> str:
    """The latest routing run, once the routing app has runs."""
    try:
        model = apps.get_model("routing", "RoutingRun")
    except LookupError:
        return "none (routing runs are not available in this installation)"
    run = model.objects.filter(project=project).order_by("-id").first()
    if run is None:
        return "none yet"
    parts = [f"#{run.pk}"]
    for field in ("strategy", "budget", "status", "created_at"):
        value = getattr(run, field, None)
        if value not in (None, ""):
            parts.append(f"{field} {value}")
    return ", ".join(parts)


def summary_section(project: Project, judge: str | None, title: str = "Summary") -> list[str]:
    """Counts of comparisons by where their final label comes from, of human labels by source,
    and the project's settings."""
    total = Comparison.objects.filter(project=project).count()
    final = final_label_counts(project)
    by_source = dict(
        HumanLabel.objects.filter(comparison__project=project)
        .order_by()
        .values_list("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )
    return [
        f"## {title}",
        "",
        "| | |",
        "| --- | --- |",
        f"| project | `{project.slug}` |",
        f"| licence | {project.license or 'not set'} |",
        f"| comparisons | {total} |",
        f"| final label from humans | {final.human} |",
        f"| final label from the LM judge (no human label) | {final.lm} |",
        f"| without a final label (tied or Tie votes, an LM Tie, no label) | {final.none} |",
        f"| human labels (platform / imported) | {by_source.get('platform', 0)} / "
        f"{by_source.get('imported', 0)} |",
        f"| primary judge | {judge or 'none'} |",
        f"| guidelines version | {project.guidelines_version} |",
        f"| routing run | {_routing_run_line(project)} |",
    ]


def agreement_section(project: Project, title: str = "Agreement") -> list[str]:
    agreeing, mean_agreement, unanimous = human_agreement(project)
    if not agreeing:
        return [f"## {title}", "", "No comparison has two or more human labels yet."]
    return [
        f"## {title}",
        "",
        f"Among {agreeing} comparisons with two or more human labels, on average "
        f"{mean_agreement:.1%} of the votes went to the most common overall choice; "
        f"{unanimous} ({unanimous / agreeing:.1%}) were unanimous.",
    ]


def judges_section(project: Project) -> list[str]:
    """Each judge version with its number of labels."""
    judges = list(
        LMLabel.objects.filter(comparison__project=project)
        .order_by()
        .values_list("judge_name", "judge_version")
        .annotate(n=Count("id"))
        .order_by("judge_name", "judge_version")
    )
    if not judges:
        return ["## LM judges", "", "No LM labels."]
    return [
        "## LM judges",
        "",
        "| judge | version | labels |",
        "| --- | --- | --- |",
        *(f"| {name} | {version or '-'} | {n} |" for name, version, n in judges),
    ]


def size_category(rows: int) -> str:
    for bound, tag in _SIZE_CATEGORIES:
        if rows < bound:
            return tag
    return "n>1B"


def hf_card_markdown(
    *, project: Project, schema: "pa.Schema", stats, shards: int, license: str | None, source: str
) -> str:
    """The README.md of the `hf` export; `stats` (parquet.ExportStats) counts its rows."""
    judge = project_primary_judge(project)
    lines = [
        *_front_matter(project, schema, stats, license),
        f"# {project.name}",
        "",
        project.description or "Pairwise preference data (prompt, response A, response B).",
        "",
        *_provenance_section(stats, judge, source),
        "",
        *summary_section(project, judge, title="The project's labels"),
        "",
        *agreement_section(project, title="Agreement in the project"),
        "",
        *judges_section(project),
        "",
        *_columns_section(schema),
        "",
    ]
    return "\n".join(lines)


def _front_matter(project: Project, schema: "pa.Schema", stats, license: str | None) -> list[str]:
    """YAML between `---` lines; strings written as JSON, which YAML reads as they are."""
    license = (license or project.license).strip().lower()
    return [
        "---",
        *([f"license: {json.dumps(license)}"] if license else []),
        f"pretty_name: {json.dumps(project.name)}",
        "size_categories:",
        f"- {size_category(stats.rows)}",
        "tags:",
        "- preference",
        "- rlhf",
        "- reward-modeling",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*",
        "dataset_info:",
        "  features:",
        *features_yaml(list(schema), indent=2),
        "  splits:",
        "  - name: train",
        f"    num_bytes: {stats.arrow_bytes}",
        f"    num_examples: {stats.rows}",
        f"  download_size: {stats.file_bytes}",
        f"  dataset_size: {stats.arrow_bytes}",
        "---",
        "",
    ]


def features_yaml(fields: "list[pa.Field]", indent: int) -> list[str]:
    """Arrow fields as the `features` list of a card's dataset_info (datasets' YAML form)."""
    import pyarrow as pa

    pad = " " * indent
    lines = []
    for field in fields:
        lines.append(f"{pad}- name: {field.name}")
        kind = field.type
        if pa.types.is_list(kind):
            lines.append(f"{pad}  list:")
            lines += features_yaml(list(kind.value_type), indent + 2)
        elif pa.types.is_struct(kind):
            lines.append(f"{pad}  struct:")
            lines += features_yaml(list(kind), indent + 2)
        else:
            lines.append(f"{pad}  dtype: {_DTYPES[str(kind)]}")
    return lines


def _provenance_section(stats, judge: str | None, source: str) -> list[str]:
    human, lm = stats.sources.get("human", 0), stats.sources.get("lm", 0)
    lines = [
        "## Label provenance",
        "",
        f"{stats.rows} preference pairs. `chosen` and `rejected` follow {_SOURCE_PROSE[source]}.",
        "",
        "| label from | pairs |",
        "| --- | --- |",
        f"| humans (majority vote) | {human} |",
        f"| the LM judge `{judge or 'none'}` | {lm} |",
        "",
    ]
    if stats.voted:
        mean = stats.agreement_sum / stats.voted
        lines.append(
            f"Of these, {stats.voted} pairs have two or more human votes: on average {mean:.1%} "
            f"of their votes went to the most common choice, and {stats.unanimous} "
            f"({stats.unanimous / stats.voted:.1%}) were unanimous (column `agreement`)."
        )
    else:
        lines.append("No exported pair has two or more human votes.")
    return lines


_COLUMN_PROSE = {
    "external_id": "the comparison's id in the project",
    "prompt": "the prompt (a string, or a list of messages in a conversational export)",
    "chosen": "the preferred response (same shape as `prompt`)",
    "rejected": "the other response",
    "response_a": "response A as text",
    "response_b": "response B as text",
    "model_a": "the model that wrote A",
    "model_b": "the model that wrote B",
    "choice": "`A` or `B`: the response the deciding label prefers",
    "strength": "`clearly`, `slightly` or `unknown`",
    "label_source": "`human` (majority vote) or `lm` (the primary judge)",
    "agreement": "share of the human votes for their most common choice (null: no votes)",
    "n_human_labels": "number of human votes",
    "judge_p_a": "the primary judge's probability that A is better (its latest label)",
    "margin": "reward margin for TRL's RewardTrainer: clearly 1.0, slightly 0.5, unknown 0.0",
    "posterior": "Dawid-Skene posterior over A / B / tie of the human votes",
    "label_confidence": "the posterior of the exported preference, or the judge's probability",
    "prompt_messages": "the prompt's messages as stored (null where it was plain text)",
    "response_a_messages": "response A's messages as stored (null where plain text)",
    "response_b_messages": "response B's messages as stored (null where plain text)",
    "metadata": "the comparison's metadata, as JSON text",
}


def _columns_section(schema: "pa.Schema") -> list[str]:
    return [
        "## Columns",
        "",
        *(f"- `{name}`: {_COLUMN_PROSE[name]}" for name in schema.names),
        "",
        "```python",
        "import datasets",
        "",
        'train = datasets.load_dataset("path/to/this/directory", split="train")',
        "```",
        "",
        "`prompt`, `chosen` and `rejected` (and `margin`) are what TRL's RewardTrainer and "
        "DPOTrainer read.",
    ]
