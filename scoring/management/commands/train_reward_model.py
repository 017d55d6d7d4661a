import sys

from django.core.management.base import BaseCommand, CommandError

from annotator.models import Project
from scoring.models import REWARD_MODEL_JUDGE, RewardModelRun
from scoring.training.runs import RewardRunActive, reward_run_execute, reward_run_start


class Command(BaseCommand):
    help = (
        "Train a Bradley-Terry reward model on a project's labels, then label the project's "
        "comparisons with it (unless the project's label_with_reward_model is off). By default "
        "the run is queued for a GPU worker; --sync runs it here."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--base", default="minilm", help="minilm or a model directory.")
        parser.add_argument("--labels", choices=["human", "lm", "final"], default="final")
        parser.add_argument("--eval-project", help="A held-out project scored at the end.")
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--lr", type=float, default=2e-5)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--grad-accum", type=int, default=1)
        parser.add_argument("--max-length", type=int, default=512)
        parser.add_argument("--warmup", type=float, default=0.03, help="Warmup ratio.")
        parser.add_argument("--weight-decay", type=float, default=0.0)
        parser.add_argument("--scheduler", choices=["linear", "cosine"], default="linear")
        parser.add_argument("--margin", action="store_true", help="Margin from label strength.")
        parser.add_argument("--center", type=float, default=0.01, help="Centering coefficient.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--sync", action="store_true", help="Train in this process.")

    def handle(self, *args, **opts):
        project = self._project(opts["project"])
        eval_project = self._project(opts["eval_project"]) if opts["eval_project"] else None
        try:
            run = reward_run_start(
                project=project,
                enqueue=not opts["sync"],
                base_model=opts["base"],
                label_source=opts["labels"],
                eval_project=eval_project,
                lr=opts["lr"],
                epochs=opts["epochs"],
                batch_size=opts["batch_size"],
                grad_accum=opts["grad_accum"],
                max_length=opts["max_length"],
                warmup_ratio=opts["warmup"],
                weight_decay=opts["weight_decay"],
                scheduler=opts["scheduler"],
                use_margin=opts["margin"],
                center_coef=opts["center"],
                seed=opts["seed"],
            )
        except RewardRunActive as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:  # validation of the options
            raise CommandError(str(exc)) from None
        if not opts["sync"]:
            self.stdout.write(f"queued reward-model run #{run.pk}")
            return
        run = reward_run_execute(run_id=run.pk)
        if run.status != RewardModelRun.Status.SUCCEEDED:
            raise CommandError(f"reward-model run #{run.pk} {run.status}: {run.error}")
        metrics = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in run.final_metrics.items()
        )
        labelled = (
            f"; labelled {run.labels_done} comparisons as judge {REWARD_MODEL_JUDGE!r} "
            f"version {run.judge_version!r}"
            if run.labels_total
            else ""
        )
        self.stdout.write(
            f"reward-model run #{run.pk}: {run.n_train} train / {run.n_validation} validation "
            f"pairs; {metrics}; checkpoint {run.checkpoint_dir}{labelled}"
        )
        sys.stdout.flush()

    def _project(self, slug: str) -> Project:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"project {slug!r} does not exist")
        return project
