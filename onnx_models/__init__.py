"""Encoders: cross-modal alignment training, ONNX export, and the onnxruntime ``Encoder``.

Serving imports only ``runtime``, ``images``, ``text`` and ``manifest`` (no torch).
Training/export modules (``backbones``, ``features``, ``heads``, ``train``,
``alignment``, ``export``, ``clip_export``) need the ``export`` extra.
"""
