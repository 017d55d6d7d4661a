"""The judge prompt (MT-bench / AlpacaEval style) and its label tokens.

A system text names the criteria and tells the judge to ignore order, length and style; the user
turn holds the prompt and the two responses between markers and asks for one label. The model's
next-token distribution over the labels is the judgement: scored, never parsed.
"""

from dataclasses import dataclass

BINARY = "binary"
FIVE_POINT = "five-point"
SCALES = (BINARY, FIVE_POINT)

# Label tokens: the first shown response is "A"/"1"; one character each, so one token in any
# vocabulary we have met (checked at load all the same).
LABELS = {BINARY: ("A", "B"), FIVE_POINT: ("1", "2", "3", "4", "5")}

DEFAULT_SYSTEM = (
    "You are a careful, impartial judge of AI assistant responses. Compare two responses to the "
    "same user prompt and decide which one is better: more helpful, more correct and more "
    "faithful to the instructions, and harmless. Do not let the order in which the responses "
    "are shown, their length or their style influence you."
)
DEFAULT_QUESTION = {
    BINARY: "Which response is better? Answer A or B.",
    FIVE_POINT: (
        "How do the responses compare? Answer with one digit: 1 = A is clearly better, "
        "2 = A is slightly better, 3 = tie, 4 = B is slightly better, 5 = B is clearly better."
    ),
}
DEFAULT_TEMPLATE = (
    "[User Prompt]\n{prompt}\n[End of User Prompt]\n\n"
    "[Response A]\n{first}\n[End of Response A]\n\n"
    "[Response B]\n{second}\n[End of Response B]\n\n"
    "{question}"
)
TRUNCATION_MARKER = "\n[... truncated ...]\n"


@dataclass(frozen=True)
class JudgeInput:
    """One shown order of one comparison: `first` is what the judge sees as Response A."""

    key: tuple[int, str]  # (comparison id, "AB" or "BA")
    prompt: str
    first: str
    second: str


@dataclass(frozen=True)
class PromptSpec:
    system: str = DEFAULT_SYSTEM
    template: str = DEFAULT_TEMPLATE
    scale: str = BINARY

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS[self.scale]

    @property
    def question(self) -> str:
        return DEFAULT_QUESTION[self.scale]


def judge_messages(spec: PromptSpec, item: JudgeInput, *, first=None, second=None) -> list[dict]:
    """Chat messages for one shown order. `first`/`second` override the responses (truncated)."""
    user = spec.template.format(
        prompt=item.prompt,
        first=item.first if first is None else first,
        second=item.second if second is None else second,
        question=spec.question,
    )
    return [{"role": "system", "content": spec.system}, {"role": "user", "content": user}]
