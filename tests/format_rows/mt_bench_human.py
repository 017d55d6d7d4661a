"""lmsys/mt_bench_human_judgments rows (split `human`) as its schema and FastChat's agreement code
read them: one vote per row on one turn of a two-turn MT-Bench dialogue (4 messages per side),
judges `expert_N` or `author_N`, the pair in either order, votes of one comparison spread over the
file."""

import random

MODELS = ("gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.2", "alpaca-13b", "llama-13b")
WINNERS = ("model_a", "model_b", "tie")


def question(question_id: int, turn: int) -> str:
    return f"MT-Bench question {question_id}, turn {turn}: compose a travel blog post about Hawaii."


def answer(question_id: int, model: str, turn: int) -> str:
    """The same model's answer whichever vote shows it (votes share the model answers)."""
    return f"{model} answers question {question_id}, turn {turn}."


def conversation(question_id: int, model: str) -> list[dict]:
    return [
        message
        for turn in (1, 2)
        for message in (
            {"content": question(question_id, turn), "role": "user"},
            {"content": answer(question_id, model, turn), "role": "assistant"},
        )
    ]


def vote(question_id: int, model_a: str, model_b: str, turn: int, judge: str, winner: str) -> dict:
    return {
        "question_id": question_id,
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "judge": judge,
        "conversation_a": conversation(question_id, model_a),
        "conversation_b": conversation(question_id, model_b),
        "turn": turn,
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    """n votes on comparisons drawn from 80 questions, 15 pairs and 2 turns, by 3 to 6 judges
    each (a judge may vote twice on one), shuffled."""
    rng = random.Random(seed)
    judges = [f"expert_{k}" for k in range(40)] + [f"author_{k}" for k in range(6)]
    out: list[dict] = []
    while len(out) < n:
        question_id = rng.randint(81, 160)
        model_a, model_b = rng.sample(MODELS, 2)
        turn = rng.choice((1, 2))
        for _ in range(min(rng.randint(3, 6), n - len(out))):
            first, second = (model_a, model_b) if rng.random() < 0.5 else (model_b, model_a)
            winner = rng.choice(WINNERS)
            out.append(vote(question_id, first, second, turn, rng.choice(judges), winner))
    rng.shuffle(out)
    return out
