"""Serving-time encoder: onnxruntime + tokenizers + PIL/numpy, never torch.

One :class:`Encoder` per model package. It is thread-safe for concurrent
``encode_*`` calls because ``InferenceSession.run`` is, and it holds no other
mutable state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.exceptions import ImageDecodeError, ModelError

try:
    import onnxruntime as ort
except ImportError as exc:  # neither runtime extra is installed (or a half-removed one left a broken module)
    raise ModelError("onnxruntime is not importable: install mmsearch[cpu] or mmsearch[gpu] (exactly one of them; "
                     "docs/gpu.md)", detail=str(exc)) from exc
from onnx_models.images import DEFAULT_MAX_PIXELS, ImageSpec, preprocess, safe_decode, to_rgb
from onnx_models.manifest import TOKENIZER_DIR, identity_of_bytes, read_manifest
from onnx_models.text import TextTemplate, TextTokenizer

ImageInput = bytes | bytearray | memoryview | Image.Image


def default_providers(requested: Sequence[str] | None = None) -> list[str]:
    """``requested`` if given (validated), else CUDA when this onnxruntime build has it, else CPU."""
    available = ort.get_available_providers()
    if requested:
        unknown = [p for p in requested if p not in available]
        if unknown:
            raise ModelError("onnxruntime provider not available", requested=list(requested),
                             available=available)
        return list(requested)
    env = os.environ.get("MMSEARCH_ORT_PROVIDERS")
    if env:
        return default_providers([p.strip() for p in env.split(",") if p.strip()])
    preferred = [p for p in ("CUDAExecutionProvider",) if p in available]
    return preferred + ["CPUExecutionProvider"]


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...] | None = None
    intra_op_threads: int | None = None
    #: onnxruntime's intra-op threads spin-wait for work after each run (its default). None keeps
    #: the default; False makes them sleep, freeing the cores for Elasticsearch and the other session.
    allow_spinning: bool | None = None
    batch_size: int = 32
    max_pixels: int = DEFAULT_MAX_PIXELS
    verify_files: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.intra_op_threads is not None and self.intra_op_threads < 0:
            raise ValueError("intra_op_threads must be >= 0 (0 = onnxruntime default)")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be >= 1")


class Encoder:
    """Text and image embeddings in one space, float32, L2-normalised."""

    def __init__(self, model_dir: Path, manifest: dict[str, Any], manifest_raw: bytes,
                 options: RuntimeOptions) -> None:
        self.model_dir = Path(model_dir)
        self.manifest = manifest
        self.identity = identity_of_bytes(manifest_raw)
        self.name: str = str(manifest["name"])
        self.dim: int = int(manifest["dim"])
        self.options = options
        self.template = TextTemplate.from_dict(manifest["text_template"])
        self.image_spec = ImageSpec.from_dict(manifest["image"])
        text_cfg = manifest["text"]
        self.tokenizer = TextTokenizer(self.model_dir / text_cfg.get("tokenizer", f"{TOKENIZER_DIR}/tokenizer.json"),
                                       max_length=int(text_cfg.get("max_length", 64)),
                                       pad_token=text_cfg.get("pad_token"),
                                       pad_to_max_length=bool(text_cfg.get("pad_to_max_length", False)))
        so = ort.SessionOptions()
        if options.intra_op_threads is not None:
            so.intra_op_num_threads = options.intra_op_threads
        if options.allow_spinning is not None:
            so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.allow_spinning else "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = default_providers(options.providers)
        self.providers = providers
        self._text = self._session(text_cfg["graph"], so, providers)
        self._image = self._session(manifest["image"]["graph"], so, providers)
        self._text_inputs = {i.name for i in self._text.get_inputs()}
        self._image_input = self._image.get_inputs()[0].name
        self._image_output = self._image.get_outputs()[0].name
        #: Catalog field -> class labels of the image graph's classifiers (packages since issue 13 item 6).
        self.photo_labels: dict[str, list[str]] = {}
        self._photo_outputs: list[str] = []
        outputs = {o.name for o in self._image.get_outputs()}
        for name, spec in (manifest["image"].get("attributes") or {}).items():
            if spec.get("output") in outputs:
                self.photo_labels[name] = [str(label) for label in spec["labels"]]
                self._photo_outputs.append(str(spec["output"]))

    def _session(self, graph: str, so: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(str(self.model_dir / graph), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError("cannot load ONNX graph", graph=graph, model_dir=str(self.model_dir),
                             detail=str(exc)) from exc

    @classmethod
    def load(cls, model_dir: str | Path, providers: Sequence[str] | None = None,
             intra_op_threads: int | None = None, batch_size: int = 32, **options: Any) -> Encoder:
        manifest, raw = read_manifest(Path(model_dir), verify_files=options.pop("verify_files", True))
        opts = RuntimeOptions(providers=tuple(providers) if providers else None, intra_op_threads=intra_op_threads,
                              batch_size=batch_size, **options)
        return cls(Path(model_dir), manifest, raw, opts)

    # -- text ------------------------------------------------------------------------

    def product_text(self, record: Mapping[str, Any]) -> str:
        """The text the index embeds for a product: the template saved with the model."""
        return self.template.render(record)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode_texts takes a list of strings, not a string")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = self.options.batch_size
        for start in range(0, len(texts), step):
            feeds = self.tokenizer(texts[start:start + step])
            feeds = {k: v for k, v in feeds.items() if k in self._text_inputs}
            out[start:start + step] = self._text.run(None, feeds)[0]
        return self._finish(out)

    # -- images ----------------------------------------------------------------------

    def load_image(self, item: ImageInput) -> Image.Image:
        if isinstance(item, Image.Image):
            width, height = item.size
            if width * height > self.options.max_pixels:
                raise ImageDecodeError("image too large", width=width, height=height,
                                       max_pixels=self.options.max_pixels)
            return to_rgb(item)
        if isinstance(item, (bytes, bytearray, memoryview)):
            return safe_decode(bytes(item), max_pixels=self.options.max_pixels)
        raise ImageDecodeError("image must be bytes or a PIL image", got=type(item).__name__)

    def encode_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Decodes everything first, so a bad image fails the call before any compute is spent."""
        decoded = [self.load_image(item) for item in images]
        out = np.empty((len(decoded), self.dim), dtype=np.float32)
        step = self.options.batch_size
        for start in range(0, len(decoded), step):
            pixels = preprocess(decoded[start:start + step], self.image_spec)
            out[start:start + step] = self._image.run([self._image_output], {self._image_input: pixels})[0]
        return self._finish(out)

    def encode_image_with_attributes(self, image: ImageInput, top: int = 3
                                     ) -> tuple[np.ndarray, dict[str, list[tuple[str, float]]]]:
        """One photo's vector and, per classified field, its ``top`` labels with probabilities
        (empty for packages without classifiers): the photo's type and colour in the same run."""
        pixels = preprocess([self.load_image(image)], self.image_spec)
        outputs = self._image.run([self._image_output, *self._photo_outputs], {self._image_input: pixels})
        guesses: dict[str, list[tuple[str, float]]] = {}
        for (name, labels), probs in zip(self.photo_labels.items(), outputs[1:]):
            order = np.argsort(-probs[0])[:top]
            guesses[name] = [(labels[i], float(probs[0][i])) for i in order]
        return self._finish(outputs[0].astype(np.float32, copy=False))[0], guesses

    def _finish(self, out: np.ndarray) -> np.ndarray:
        # Graphs normalise already; re-normalising is cheap and protects against
        # int8 drift and packages exported with normalize=false.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, dim={self.dim}, identity={self.identity[:12]}, providers={self.providers})"
