"""Shared foundation of the hybrid multimodal search backend.

Data flow: catalog -> ``onnx_models`` -> ``indexer`` -> Elasticsearch <- ``query_service`` <- clients.
This package holds what every stage shares: configuration, the exception
hierarchy, retry policies, the local Elasticsearch node manager, cluster
capability detection and the ``mmsearch`` command line.
"""

__version__ = "0.1.0"
