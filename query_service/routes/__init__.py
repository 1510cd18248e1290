"""The query service's HTTP layer: one Flask blueprint per surface, no domain logic.

- ``search``: ``/search`` (GET, JSON, multipart photo upload);
- ``proxy``: the Elasticsearch-compatible surface (allowlisted reads, hybrid ``_search``/``_msearch``);
- ``ops``: ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``;
- ``pages``: the search page (``/``, for browsers), ``/compare``, ``/ops`` and their JSON; ``photos``: ``/photos/...``;
- ``events`` lives with the relevance tooling (``query_service.relevance.http``).
"""
