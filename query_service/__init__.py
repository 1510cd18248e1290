"""Flask query service: hybrid kNN + BM25 search with score fusion, and an ES-compatible proxy.

``relevance/`` holds offline evaluation, fusion tuning, A/B experiments and interleaving.
"""
