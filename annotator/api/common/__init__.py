"""The REST API's shared plumbing, imported by every app's API: token authentication, the one
error body and its schema, cursor pagination, project-role permissions, the text renderers,
throttling and the documentation page."""
