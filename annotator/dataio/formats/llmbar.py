"""`llmbar`: LLMBar's dataset.json (a JSON array, which LLMBar keeps small), its gold label as an
expert's human label, and optionally the evaluators' results beside it as LM labels."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from annotator.dataio.formats.common import (
    Format,
    Parsed,
    ReadOptions,
    document_read,
    open_binary,
)
from annotator.dataio.records import FieldError

LLMBAR_GOLD_ANNOTATOR = "LLMBar gold"
_LLMBAR_KEYS = ("input", "output_1", "output_2")


def _llmbar_winner(value: Any) -> float | None:
    """P(output_1 better) from one order's verdict; None when the judge gave no verdict."""
    if value is None:
        return None
    if str(value) == "1":
        return 1.0
    if str(value) == "2":
        return 0.0
    raise ValueError(f"winner {value!r} is not '1', '2' or null")


def _llmbar_lm_label(judge: str, prompt: str, results: Any) -> tuple[dict | None, str | None]:
    """Turn one LLMBar evaluator record into an LM label. Returns (label, problem)."""
    if not isinstance(results, list) or not results or not isinstance(results[-1], dict):
        return None, "results must be a list ending in a {'swap = False', 'swap = True'} object"
    verdicts = results[-1]
    try:
        p_ab = _llmbar_winner((verdicts.get("swap = False") or {}).get("winner"))
        p_ba = _llmbar_winner((verdicts.get("swap = True") or {}).get("winner"))
    except ValueError as exc:
        return None, str(exc)
    given = [p for p in (p_ab, p_ba) if p is not None]
    if not given:
        return None, None  # no verdict in either order: nothing to store
    p_a = sum(given) / len(given)
    return {
        "judge": judge,
        "judge_version": prompt,
        "overall": "A" if p_a > 0.5 else "B" if p_a < 0.5 else "Tie",
        "p_a": p_a,
        "p_a_ab": p_ab,
        "p_a_ba": p_ba,
        "position_consistent": (p_ab == p_ba) if len(given) == 2 else None,
        "raw_output": {"results": results},
    }, None


# An evaluator's results beside dataset.json: (judge, prompt, file name, one record per item).
_Evaluator = tuple[str, str, str, list]


def read_llmbar(
    stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
) -> Iterator[Parsed]:
    try:
        items = orjson.loads(document_read(open_binary(stream), "the file"))
    except orjson.JSONDecodeError as exc:
        yield Parsed(source, 1, None, [FieldError("(file)", f"invalid JSON: {exc}")])
        return
    except ValueError as exc:  # too large to parse at once
        yield Parsed(source, 1, None, [FieldError("(file)", str(exc))])
        return
    if not isinstance(items, list):
        yield Parsed(source, 1, None, [FieldError("(file)", "must be a JSON array of records")])
        return
    subset = path.parent.name if path is not None else "LLMBar"
    evaluators: list[_Evaluator] = []
    if options.with_evaluators:
        if path is None:
            raise ValueError("--with-evaluators needs the dataset.json path (not a stream)")
        evaluators, unreadable = _llmbar_evaluators(path, len(items))
        yield from unreadable
    for index, item in enumerate(items):
        where = f"record {index + 1}"
        native, errors = _llmbar_native(item, subset, index)
        if errors:
            yield Parsed(source, where, None, errors)
            continue
        native["lm_labels"], problems = _llmbar_evaluator_labels(evaluators, item, index, where)
        yield from problems
        yield Parsed(source, where, native)


def _llmbar_evaluators(path: Path, count: int) -> tuple[list[_Evaluator], list[Parsed]]:
    """The evaluators' results beside `path`, each with one record per item (`count`), and
    the files that cannot be used."""
    evaluators: list[_Evaluator] = []
    unreadable: list[Parsed] = []
    for result_path in sorted(path.parent.glob("evaluators/*/*/result.json")):
        name = str(result_path)
        try:
            records = orjson.loads(result_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            unreadable.append(Parsed(name, 1, None, [FieldError("(file)", f"invalid JSON: {exc}")]))
            continue
        if not isinstance(records, list) or len(records) != count:
            problem = f"must hold {count} records like dataset.json"
            unreadable.append(Parsed(name, 1, None, [FieldError("(file)", problem)]))
            continue
        evaluators.append((result_path.parent.parent.name, result_path.parent.name, name, records))
    return evaluators, unreadable


def _llmbar_native(item: Any, subset: str, index: int) -> tuple[dict | None, list[FieldError]]:
    """An LLMBar record in the native shape with its gold label as an expert's human label (no
    LM labels yet), or what is wrong with it."""
    if not isinstance(item, dict):
        return None, [FieldError("(record)", "must be an object")]
    errors = [
        FieldError(key, "missing" if key not in item else "must be a string")
        for key in _LLMBAR_KEYS
        if not isinstance(item.get(key), str)
    ]
    if item.get("label") not in (1, 2):
        errors.append(FieldError("label", f"{item.get('label')!r} is not 1 or 2"))
    if errors:
        return None, errors
    return {
        "external_id": f"{subset}-{index:04d}",
        "prompt": item["input"],
        "response_a": item["output_1"],
        "response_b": item["output_2"],
        "metadata": {"source": "LLMBar", "subset": subset, "index": index},
        "human_labels": [
            {
                "annotator": LLMBAR_GOLD_ANNOTATOR,
                "annotator_type": "expert",
                "overall": "A" if item["label"] == 1 else "B",
            }
        ],
        "lm_labels": [],
    }, []


def _llmbar_evaluator_labels(
    evaluators: list[_Evaluator], item: dict, index: int, where: str
) -> tuple[list[dict], list[Parsed]]:
    """The evaluators' LM labels of item `index`, and the problems of their records."""
    labels: list[dict] = []
    problems: list[Parsed] = []
    for judge, prompt, name, records in evaluators:
        result = records[index]
        if not isinstance(result, dict) or any(result.get(k) != item[k] for k in _LLMBAR_KEYS):
            problem = FieldError("input", "does not match dataset.json at this index")
            problems.append(Parsed(name, where, None, [problem]))
            continue
        label, problem = _llmbar_lm_label(judge, prompt, result.get("results"))
        if problem:
            problems.append(Parsed(name, where, None, [FieldError("results", problem)]))
        elif label:
            labels.append(label)
    return labels, problems


FORMAT = Format(
    name="llmbar",
    read=read_llmbar,
    keys=frozenset({"input", "output_1", "output_2", "label"}),
    summary=(
        "LLMBar's dataset.json (a JSON array), gold label as an expert's; --with-evaluators adds "
        "the evaluators' verdicts"
    ),
    check=None,
)
