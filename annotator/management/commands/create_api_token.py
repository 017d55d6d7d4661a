from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotator.api.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create a REST API token for USER and print it (once: only its hash is stored). "
        "Revoke tokens on the API tokens page."
    )

    def add_arguments(self, parser):
        parser.add_argument("user", help="Username.")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args, **opts):
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: opts["user"]}).first()
        if user is None:
            raise CommandError(f"user {opts['user']!r} does not exist")
        if not user.is_active:
            raise CommandError(f"user {opts['user']!r} is inactive")
        token, secret = api_token_create(user=user, name=opts["name"])
        self.stderr.write(f"token #{token.pk} ({token.name}) for {user.get_username()}")
        self.stdout.write(secret)
