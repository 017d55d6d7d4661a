"""The dataset card (README.md in markdown) that describes a project's export; its sections are
annotator.dataio.export.card's, which the `hf` export's card shares."""

from annotator.dataio.export.card import agreement_section, judges_section, summary_section
from annotator.final_labels import project_primary_judge
from annotator.models import Project


def dataset_card_markdown(*, project: Project) -> str:
    judge = project_primary_judge(project)
    lines = [
        f"# {project.name}",
        "",
        project.description or "Pairwise preference data (prompt, response A, response B).",
        "",
        *summary_section(project, judge),
        "",
        *agreement_section(project),
        "",
        *judges_section(project),
        "",
        *_FILES_SECTION,
        "",
    ]
    return "\n".join(lines)


_FILES_SECTION = [
    "## Files",
    "",
    "- `export.jsonl?format=trl`: `prompt`, `chosen`, `rejected`, `external_id`, "
    "`label_source` (human / lm), `strength`, `agreement` for every comparison with a final "
    "label: the majority of its human labels (tied votes and Tie majorities are left out), "
    "else the primary judge's latest label (ties left out).",
    "- `export.jsonl?format=full`: every comparison with every human and LM label.",
    "- `export?format=parquet`: the TRL pairs with their provenance as one Parquet file.",
    "- `export?format=hf`: a Hugging Face dataset (Parquet shards and a card) as a zip.",
    "- `export.jsonl?format=multipref`: MultiPref's rows with their human annotations.",
    "",
    'Load with `datasets.load_dataset("json", data_files="export.jsonl")`.',
]
