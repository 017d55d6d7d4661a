"""The REST API under /api/v1/: token or session auth, project roles, streamed import/export."""
