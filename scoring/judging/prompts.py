"""The judge prompt (MT-bench / AlpacaEval style) and its label tokens.

A system text names the criteria and tells the judge to ignore order, length and style; the user
turn holds the prompt and the two responses between markers and asks for one label. The model's
next-token distribution over the labels is the judgement: scored, never parsed.

A comparison given as a conversation goes into the same user turn as a transcript that keeps
every role (`judge_text`): the judge's own chat template then wraps the judge's two messages as
it wraps any other. An empty response is shown as EMPTY_RESPONSE, never as nothing.
"""

from collections.abc import Sequence
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
# What the judge reads for an empty or whitespace-only response: a blank between the markers
# could be taken for a formatting slip; said outright, the judge can prefer the other response.
EMPTY_RESPONSE = "[This response is empty.]"


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


def judge_text(text: str, messages: Sequence[dict] | None, *, response: bool = False) -> str:
    """What the judge reads for a prompt or a response: its text, or, given as messages, a
    transcript with every turn's role (`### User:` then its content). One message of the
    expected role (a user prompt, an assistant response) is shown as its content alone, as plain
    text would be. A blank response is EMPTY_RESPONSE."""
    if messages is not None:
        plain_role = "assistant" if response else "user"
        if len(messages) == 1 and messages[0]["role"] == plain_role:
            text = messages[0]["content"]
        else:
            text = "\n\n".join(
                f"### {_role_name(m)}:\n{m['content']}" for m in messages if m["content"].strip()
            )
    if response and not text.strip():
        return EMPTY_RESPONSE
    return text


def _role_name(message: dict) -> str:
    name = message.get("name")
    role = message["role"].capitalize()
    return f"{role} ({name})" if isinstance(name, str) and name.strip() else role


def judge_inputs(
    pk: int,
    texts: tuple[str, str, str],
    messages: tuple[Sequence[dict] | None, ...] = (None, None, None),
) -> tuple[JudgeInput, JudgeInput]:
    """The two shown orders (AB, BA) of a comparison from its (prompt, A, B) texts and their
    messages (None where given as plain text)."""
    prompt = judge_text(texts[0], messages[0])
    a = judge_text(texts[1], messages[1], response=True)
    b = judge_text(texts[2], messages[2], response=True)
    return JudgeInput((pk, "AB"), prompt, a, b), JudgeInput((pk, "BA"), prompt, b, a)
