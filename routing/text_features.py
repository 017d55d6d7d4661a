"""Per-comparison text features that need no model: lengths, ROUGE-1 and entity/number overlap.

Pure functions over strings (no ORM, no torch). The embedding similarity lives in
`routing.embeddings` (an ML module); the service in `routing.features` puts both together.
"""

import math
import re
from functools import cache

# Tokens for lengths: words and single punctuation marks. A model tokenizer would tie the
# features to one model's vocabulary and to the ML dependencies; relative lengths (the
# features are also used as percentile ranks) hardly depend on the tokenizer.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

# --- Entity / number overlap: the substitute for the paper's spaCy NER ---------------------
# The paper measures named-entity overlap with a spaCy model, which is not available offline.
# This substitute extracts, with regular expressions:
#   - numbers (integers, decimals, with thousands separators, percentages), normalised so that
#     "1,000" and "1000" match;
#   - capitalised word sequences that do not start a sentence ("New York", "Marie Curie"),
#     which is what most named entities look like in English text, lower-cased;
#   - all-caps acronyms of two or more letters ("NASA", "GDP").
# Sentence-initial capitals are skipped because they are mostly ordinary words. It misses
# lower-case entities and non-Latin scripts, and it over-counts capitalised headings; as a
# *relative* signal (do A and B mention the same things?) it is what the router needs.
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?%?")
_CAPITALISED = re.compile(r"(?<![.!?:\n]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")


def token_count(text: str) -> int:
    return len(_TOKEN.findall(text))


def entities(text: str) -> frozenset[str]:
    """Entity-like mentions in `text` (see the substitute above), normalised."""
    found = {
        m.replace(",", "").rstrip("%") + ("%" if m.endswith("%") else "")
        for m in _NUMBER.findall(text)
    }
    found.update(m.lower() for m in _CAPITALISED.findall(text))
    found.update(_ACRONYM.findall(text))
    return frozenset(found)


def entity_iou(a: str, b: str) -> float | None:
    """Intersection over union of the entity sets of A and B; None when neither has any.

    The union is |A| + |B| - |A & B| (the reference code used |B| + |B| - |A & B|, a bug
    named in docs/architecture.md, "Routing")."""
    ea, eb = entities(a), entities(b)
    inter = len(ea & eb)
    union = len(ea) + len(eb) - inter
    return inter / union if union else None


@cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)


def rouge1_f(a: str, b: str) -> float:
    """ROUGE-1 F-measure between the two responses (symmetric)."""
    return float(_rouge_scorer().score(a, b)["rouge1"].fmeasure)


def length_penalty(len_a: int, len_b: int) -> float:
    """exp(1 - longer/shorter), as the paper scales BERTScore; 0 when one response is empty,
    1 when both are (equal lengths: no penalty)."""
    shorter, longer = min(len_a, len_b), max(len_a, len_b)
    if longer == 0:
        return 1.0
    if shorter == 0:
        return 0.0
    return math.exp(1.0 - longer / shorter)


def text_features(prompt: str, a: str, b: str) -> dict[str, float | None]:
    """Everything but the embedding similarity, for one comparison."""
    lp, la, lb = token_count(prompt), token_count(a), token_count(b)
    return {
        "len_prompt": float(lp),
        "len_a": float(la),
        "len_b": float(lb),
        "len_shorter": float(min(la, lb)),
        "len_longer": float(max(la, lb)),
        "len_diff": float(abs(la - lb)),
        "rouge1_f": rouge1_f(a, b),
        "entity_iou": entity_iou(a, b),
        "length_penalty": length_penalty(la, lb),
    }
