import sys
from contextlib import ExitStack
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotator.dataio.formats import open_binary
from scoring.models import RewardModelRun
from scoring.training.runs import reward_pairs_score

BATCH = 256


class Command(BaseCommand):
    help = (
        "Score comparisons with a trained reward model: reads JSON Lines with prompt, "
        "response_a, response_b (external_id kept) and writes each response's reward and "
        "the predicted preference as JSON Lines."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Input JSON Lines (gzip allowed), or - for stdin.")
        parser.add_argument("--run", type=int, required=True, help="Reward-model run id.")
        parser.add_argument("--output", help="Output file (default: standard output).")

    def handle(self, *args, **opts):
        run = RewardModelRun.objects.filter(pk=opts["run"]).first()
        if run is None:
            raise CommandError(f"reward-model run {opts['run']} does not exist")
        with ExitStack() as stack:
            source = (
                sys.stdin.buffer
                if opts["file"] == "-"
                else stack.enter_context(Path(opts["file"]).open("rb"))
            )
            out = stack.enter_context(Path(opts["output"]).open("wb")) if opts["output"] else None
            self._score(run, source, out, opts["file"])

    def _score(self, run, source, out, name) -> None:
        try:
            batch = []
            for number, raw in enumerate(open_binary(source), 1):
                if not raw.strip():
                    continue
                try:
                    item = orjson.loads(raw)
                    batch.append(
                        {k: item[k] for k in ("prompt", "response_a", "response_b")}
                        | {k: item[k] for k in ("external_id", "id") if k in item}
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise CommandError(
                        f"{name}:{number}: needs prompt, response_a and response_b ({exc})"
                    ) from None
                if len(batch) >= BATCH:
                    self._write(run, batch, out)
                    batch = []
            if batch:
                self._write(run, batch, out)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def _write(self, run, batch, out) -> None:
        lines = b"".join(orjson.dumps(r) + b"\n" for r in reward_pairs_score(run=run, items=batch))
        if out is not None:
            out.write(lines)
        else:
            self.stdout.write(lines.decode(), ending="")
