"""Flask query service: hybrid kNN + BM25 search with score fusion, and an ES-compatible proxy.

Written and owned by the lead (see docs/architecture.md, "Work status"): helpers must not
rewrite these modules. ``relevance/`` holds evaluation, tuning, A/B and interleaving.
"""
