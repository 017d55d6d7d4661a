"""gunicorn's settings (`gunicorn -c python:config.gunicorn ...`, as the images run it): its own
log lines (start-up, worker timeouts and restarts) in the application's format, so that a log
pipeline reads one format (LOG_FORMAT: a JSON object per line by default)."""

from config.settings import LOGGING

# gunicorn applies this in the master before any worker loads Django; Django's own LOGGING then
# configures the application's loggers in each worker.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": LOGGING["formatters"],
    "handlers": LOGGING["handlers"],
    "root": LOGGING["root"],
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Off: the application logs each request (request_finished, with its id and user).
        "gunicorn.access": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
