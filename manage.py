#!/usr/bin/env python
import os
import sys

# Commands that only read the code and sign nothing: they run without a SECRET_KEY (CI's
# `makemigrations --check`, an image build's collectstatic). Everything else, servers and workers
# included, still needs one (config/settings.py refuses to start without it).
KEYLESS_COMMANDS = {"makemigrations", "collectstatic"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        os.environ.setdefault("SECRET_KEY", "unused-by-" + sys.argv[1])
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
