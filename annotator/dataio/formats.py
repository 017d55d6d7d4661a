"""Readers for the import formats. Each yields `Parsed` items in the native shape.

Readers only parse and reshape; `records.record_from_native` validates. Line-oriented formats stream
(memory does not grow with the file); `llmbar` reads a JSON array, which LLMBar keeps small.
Gzip input is recognised by its magic bytes, so `.gz` names are not required.
"""

import gzip
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from annotator.dataio.records import FieldError

FORMATS = ("native", "trl", "hh-rlhf", "llmbar")

GZIP_MAGIC = b"\x1f\x8b"
HH_ASSISTANT = "\n\nAssistant:"


@dataclass(slots=True)
class Parsed:
    """One input item: where it came from, its native-shaped object, or what was wrong with it."""

    source: str
    line: int | str
    obj: dict | None
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    # trl / hh-rlhf: where the dataset's own preference goes.
    label_name: str = "imported"
    lm_judge: str | None = None  # set: store it as an LM label of this judge instead
    # llmbar: also read evaluators/<JUDGE>/<PROMPT>/result.json beside dataset.json
    with_evaluators: bool = False


def open_binary(stream: BinaryIO) -> BinaryIO:
    """Wrap a binary stream, transparently decompressing gzip."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"))
    return buffered


def read_items(
    stream: BinaryIO, *, fmt: str, source: str, options: ReadOptions, path: Path | None = None
) -> Iterator[Parsed]:
    if fmt == "native":
        return read_native(stream, source)
    if fmt == "trl":
        return read_trl(stream, source, options)
    if fmt == "hh-rlhf":
        return read_hh_rlhf(stream, source, options)
    if fmt == "llmbar":
        return read_llmbar(stream, source, options, path)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _json_lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any, list[FieldError]]]:
    for number, raw in enumerate(open_binary(stream), 1):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw), []
        except orjson.JSONDecodeError:
            yield number, None, [FieldError("(line)", _json_problem(raw))]


def _json_problem(raw: bytes) -> str:
    """orjson's message for one line, with the column counted within that line."""
    try:
        orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return "invalid JSON"


def _json_objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, dict, Parsed | None]]:
    """(line number, object, None) per JSON-object line, or (line, None, the failed item)."""
    for number, obj, errors in _json_lines(stream, source):
        if errors:
            yield number, None, Parsed(source, number, None, errors)
        elif not isinstance(obj, dict):
            yield (
                number,
                None,
                Parsed(source, number, None, [FieldError("(line)", "must be a JSON object")]),
            )
        else:
            yield number, obj, None


def read_native(stream: BinaryIO, source: str) -> Iterator[Parsed]:
    for number, obj, errors in _json_lines(stream, source):
        yield Parsed(source, number, obj, errors)


# --- chosen/rejected formats ---


def pair_external_id(prompt: str, chosen: str, rejected: str) -> str:
    """A stable id for a pair that has none: a hash of its content (order-independent of A/B)."""
    digest = hashlib.sha256(orjson.dumps([prompt, chosen, rejected])).hexdigest()
    return digest[:24]


def chosen_is_b(external_id: str) -> bool:
    """Reproducible A/B order for chosen/rejected data, seeded by the external id."""
    return hashlib.sha256(external_id.encode()).digest()[0] & 1 == 1


def preference_record(
    *,
    external_id: str,
    prompt: str,
    chosen: str,
    rejected: str,
    metadata: dict,
    options: ReadOptions,
) -> dict:
    swap = chosen_is_b(external_id)
    winner = "B" if swap else "A"
    record = {
        "external_id": external_id,
        "prompt": prompt,
        "response_a": rejected if swap else chosen,
        "response_b": chosen if swap else rejected,
        "metadata": metadata,
    }
    if options.lm_judge:
        record["lm_labels"] = [{"judge": options.lm_judge, "overall": winner}]
    else:
        record["human_labels"] = [{"annotator": options.label_name, "overall": winner}]
    return record


def _message_text(value: Any, name: str, errors: list[FieldError]) -> str | None:
    """A string, or a chat message list rendered as text (one message: its content)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        parts = []
        for index, message in enumerate(value):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("content"), str)
                or not isinstance(message.get("role"), str)
            ):
                errors.append(
                    FieldError(
                        f"{name}[{index}]", 'must be a message {"role": ..., "content": ...}'
                    )
                )
                return None
            parts.append(message)
        if len(parts) == 1:
            return parts[0]["content"]
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in parts)
    if value is None:
        errors.append(FieldError(name, "missing"))
    else:
        errors.append(FieldError(name, "must be a string or a non-empty list of chat messages"))
    return None


def _implicit_prompt(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """Split conversational chosen/rejected sharing their first messages (TRL implicit prompt)."""
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        return None, chosen, rejected
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        return None, chosen, rejected
    return chosen[:shared], chosen[shared:], rejected[shared:]


def read_trl(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in _json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        prompt_value, chosen_value, rejected_value = (
            obj.get("prompt"),
            obj.get("chosen"),
            obj.get("rejected"),
        )
        if "prompt" not in obj:
            prompt_value, chosen_value, rejected_value = _implicit_prompt(
                chosen_value, rejected_value
            )
        errors = []
        prompt = _message_text(prompt_value, "prompt", errors)
        chosen = _message_text(chosen_value, "chosen", errors)
        rejected = _message_text(rejected_value, "rejected", errors)
        external_id = obj.get("external_id", obj.get("id"))
        if external_id is not None and not isinstance(external_id, str):
            errors.append(FieldError("external_id", "must be a string"))
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        metadata = {
            k: v
            for k, v in obj.items()
            if k not in {"prompt", "chosen", "rejected", "external_id", "id"}
        }
        if isinstance(obj.get("chosen"), list):
            metadata["trl_format"] = "conversational"
        yield Parsed(
            source,
            number,
            preference_record(
                external_id=external_id or pair_external_id(prompt, chosen, rejected),
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                metadata=metadata,
                options=options,
            ),
        )


def hh_split(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """Split two HH transcripts at the last `\\n\\nAssistant:` of their shared prefix.

    The prompt keeps the marker and the responses keep their leading space, as TRL's HH
    preprocessing does, so that prompt + response is the original transcript.
    """
    limit = min(len(chosen), len(rejected))
    shared = 0
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0 or cut + len(HH_ASSISTANT) > shared:
        return None
    end = cut + len(HH_ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def read_hh_rlhf(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in _json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors = []
        for key in ("chosen", "rejected"):
            value = obj.get(key)
            if value is None:
                errors.append(FieldError(key, "missing"))
            elif not isinstance(value, str):
                errors.append(FieldError(key, "must be a transcript string"))
            elif HH_ASSISTANT not in value:
                errors.append(FieldError(key, "has no '\\n\\nAssistant:' turn"))
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        split = hh_split(obj["chosen"], obj["rejected"])
        if split is None:
            yield Parsed(
                source,
                number,
                None,
                [
                    FieldError(
                        "chosen", "chosen and rejected share no prefix ending in an Assistant turn"
                    )
                ],
            )
            continue
        prompt, chosen, rejected = split
        external_id = obj.get("external_id") or pair_external_id(prompt, chosen, rejected)
        metadata = {k: v for k, v in obj.items() if k not in {"chosen", "rejected", "external_id"}}
        metadata.setdefault("source", "hh-rlhf")
        yield Parsed(
            source,
            number,
            preference_record(
                external_id=external_id,
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                metadata=metadata,
                options=options,
            ),
        )


# --- LLMBar ---

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
        items = orjson.loads(open_binary(stream).read())
    except orjson.JSONDecodeError as exc:
        yield Parsed(source, 1, None, [FieldError("(file)", f"invalid JSON: {exc}")])
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
