"""Indexer: catalog readers, the encode-and-bulk pipeline, and the versioned index lifecycle.

Pure logic lives in ``catalog`` (parsing), ``documents`` (normalisation, hashing,
bulk actions), ``naming`` (lifecycle decisions), ``fetch``/``images`` (reference
checks); I/O lives in ``pipeline.run_pipeline``, ``lifecycle`` and ``enrich``.
"""
