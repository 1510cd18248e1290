"""Product text templates and tokenisation (``tokenizers`` only, no torch).

The template is part of the model: the index stores embeddings of
``template.render(record)``, so the runtime must build exactly the text the
heads were trained on. It is saved in the manifest and rebuilt from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from mmsearch.exceptions import ModelError

#: Fields a template may use (the catalog schema, minus id/image).
KNOWN_FIELDS = ("title", "brand", "gender", "master_category", "sub_category", "article_type", "base_colour",
                "season", "year", "usage")


@dataclass(frozen=True)
class TextTemplate:
    """``title`` first, then the non-empty attribute values, joined by ``separator``.

    Attributes that already occur in the title (catalog titles often end with
    the colour and the type) are skipped, so the text does not weight them twice.
    """

    fields: tuple[str, ...] = ("title", "gender", "article_type", "base_colour", "usage")
    separator: str = ", "
    skip_if_in_title: bool = True

    def __post_init__(self) -> None:
        if not self.fields:
            raise ValueError("a text template needs at least one field")
        unknown = [f for f in self.fields if f not in KNOWN_FIELDS]
        if unknown:
            raise ValueError(f"unknown template fields {unknown}; known: {KNOWN_FIELDS}")
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("template fields must be unique")

    def render(self, record: Mapping[str, Any]) -> str:
        parts: list[str] = []
        title = str(record.get("title") or "").strip()
        lowered_title = title.lower()
        for name in self.fields:
            value = record.get(name)
            if value is None or value == "":
                continue
            text = str(value).strip()
            if not text:
                continue
            if name != "title" and self.skip_if_in_title and text.lower() in lowered_title:
                continue
            parts.append(text)
        return self.separator.join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "separator": self.separator, "skip_if_in_title": self.skip_if_in_title}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextTemplate:
        return cls(fields=tuple(data["fields"]), separator=str(data.get("separator", ", ")),
                   skip_if_in_title=bool(data.get("skip_if_in_title", True)))


@dataclass
class TextTokenizer:
    """Pads/truncates and returns int64 arrays for the text graph.

    ``pad_to_max_length`` exists for SigLIP, which was trained on fixed-length
    (max_length) padded inputs and ignores the attention mask.
    """

    path: Path
    max_length: int = 64
    pad_token: str | None = None
    pad_to_max_length: bool = False
    _tok: Tokenizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_length < 4:
            raise ValueError("max_length must be >= 4")
        try:
            self._tok = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError("cannot load tokenizer", path=str(self.path), detail=str(exc)) from exc
        self._tok.enable_truncation(max_length=self.max_length)
        candidates = [self.pad_token] if self.pad_token else ["[PAD]", "<pad>", "<|endoftext|>"]
        pad_token = next((t for t in candidates if t and self._tok.token_to_id(t) is not None), None)
        if pad_token is None:
            raise ModelError("tokenizer has no pad token", path=str(self.path), tried=candidates)
        self._tok.enable_padding(pad_id=self._tok.token_to_id(pad_token), pad_token=pad_token,
                                 length=self.max_length if self.pad_to_max_length else None)

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = self._tok.encode_batch([str(t) for t in texts])
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": mask}
