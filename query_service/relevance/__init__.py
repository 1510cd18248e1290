"""Relevance evaluation, fusion tuning, online A/B tests and team-draft interleaving.

Pure logic (metrics, statistics, bucketing, interleaving, the click simulator, the
tuning grid) is kept apart from the few functions that talk to Elasticsearch.
"""
