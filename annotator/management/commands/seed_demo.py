import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotator.dataio.formats import ReadOptions
from annotator.dataio.importer import comparisons_import
from annotator.labels import AnnotatorType
from annotator.models import Project, Role, Route
from annotator.services import membership_set, project_create

DEMO_DATA = Path(settings.BASE_DIR) / "annotator" / "demo" / "LLMBar-Natural" / "dataset.json"
DEMO_SLUG = "demo"
GUIDELINES = """\
# How to judge

You see an **instruction** and two **responses**. Decide which response follows the instruction
better, and by how much.

1. Correctness and faithfulness to the instruction come first: a response that ignores part of the
   instruction is worse, however fluent it is.
2. Ignore which side a response is on and how long it is.
3. Pick *Tie* only when neither response is better.
"""


class Command(BaseCommand):
    help = (
        "Create the demo project (50 LLMBar Natural pairs with ChatGPT and GPT-4 verdicts), an "
        "admin and two annotators with fresh passwords, and print the logins. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print.")

    def handle(self, *args, **opts):
        User = get_user_model()
        logins = []
        with transaction.atomic():
            project = Project.objects.filter(slug=DEMO_SLUG).first() or project_create(
                slug=DEMO_SLUG,
                name="Demo: LLMBar Natural",
                description="50 instruction-following pairs from LLMBar (MIT), with the "
                "verdicts of ChatGPT and GPT-4 in both orders.",
                guidelines=GUIDELINES,
                ask_helpful=True,
                ask_truthful=True,
                ask_harmless=True,
                default_route=Route.HUMAN,
                primary_judge="ChatGPT",
            )
            for username, role, is_admin in (
                ("admin", Role.ADMIN, True),
                ("annotator1", Role.ANNOTATOR, False),
                ("annotator2", Role.ANNOTATOR, False),
            ):
                user = User.objects.filter(username=username).first() or User(username=username)
                password = secrets.token_urlsafe(9)
                user.set_password(password)
                user.is_staff = user.is_superuser = is_admin
                user.save()
                membership_set(
                    project=project,
                    user=user,
                    role=role,
                    annotator_type=AnnotatorType.EXPERT if is_admin else AnnotatorType.NORMAL,
                )
                logins.append((username, password))
            with DEMO_DATA.open("rb") as stream:
                summary = comparisons_import(
                    project=project,
                    stream=stream,
                    source_name=str(DEMO_DATA.relative_to(settings.BASE_DIR)),
                    fmt="llmbar",
                    options=ReadOptions(with_evaluators=True),
                    path=DEMO_DATA,
                )
        url = opts["url"].rstrip("/")
        self.stdout.write(
            f"Demo project '{project.slug}': {summary.created} comparisons created, "
            f"{summary.skipped} already there."
        )
        self.stdout.write(f"Label at {url}/p/{project.slug}/annotate/ (admin pages: {url}/admin/).")
        self.stdout.write("Log in with:")
        for username, password in logins:
            self.stdout.write(f"  {username:<11} {password}")
