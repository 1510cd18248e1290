"""Synthetic products for scale tests, made by perturbing real ones (pure: no I/O).

``benchmarks/scale.py`` grows a real catalog (43k products) to 1M. Copies alone would make a
catalog of exact duplicates, which is the easiest case an HNSW graph can meet and nothing like a
real one; random vectors would be the opposite, with no neighbourhoods at all. So each synthetic
product starts from a real *base* product and:

* takes a *donor*'s colour with probability ``colour_swap`` (the word in the title too), and its
  usage, season and year with probability ``attribute_swap`` each, so text and facets recombine;
* moves its vectors by the difference of the two colours' centroids when the colour changes
  (the encoders' own direction for "this colour instead of that one"), then adds Gaussian noise
  of norm about ``noise`` and renormalises, so ``cos(synthetic, base)`` is about
  ``1 / sqrt(1 + noise**2)`` when the colour is kept.

Products are made in fixed blocks of ``BLOCK`` ids, each from its own seeded generator, so product
*i* is the same whether a run makes 1M at once or grows 100k -> 300k -> 1M.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.exceptions import ConfigError

#: Ids per generator block; part of what makes product i reproducible (do not change between runs).
BLOCK = 10_000
#: Fields taken from a donor with probability ``attribute_swap`` each.
SWAPPED_ATTRIBUTES = ("usage", "season", "year")


@dataclass(frozen=True)
class SynthesisConfig:
    """How far synthetic products stray from their real base product."""

    seed: int = 13
    noise: float = 0.25
    colour_swap: float = 0.5
    attribute_swap: float = 0.5
    id_prefix: str = "s"

    def __post_init__(self) -> None:
        if not 0 <= self.noise <= 4:
            raise ConfigError("noise must be in [0, 4] (the norm of the added noise; vectors are unit length)",
                              setting="noise", value=self.noise)
        for name in ("colour_swap", "attribute_swap"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1]", setting=name, value=getattr(self, name))
        if not re.fullmatch(r"[a-z]{1,8}", self.id_prefix):
            raise ConfigError("id_prefix must be 1-8 lowercase letters", setting="id_prefix", value=self.id_prefix)


@dataclass(frozen=True)
class BaseCatalog:
    """The real products synthetic ones are made from: their sources (no vectors) and unit vectors.

    ``image_vectors`` rows of products without a photo are ignored; ``has_image`` says which.
    """

    sources: Sequence[Mapping[str, Any]]
    text_vectors: np.ndarray
    image_vectors: np.ndarray
    has_image: np.ndarray
    text_centroids: dict[str, np.ndarray] = field(init=False)
    image_centroids: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.sources)
        if n == 0:
            raise ConfigError("the base catalog is empty", setting="base")
        if self.text_vectors.shape[0] != n or self.image_vectors.shape[0] != n or self.has_image.shape != (n,):
            raise ConfigError("base vectors and sources differ in length", setting="base", sources=n,
                              text=self.text_vectors.shape[0], image=self.image_vectors.shape[0])
        colours = np.array([str(s.get("base_colour") or "") for s in self.sources])
        object.__setattr__(self, "text_centroids", _centroids(colours, self.text_vectors, np.ones(n, bool)))
        object.__setattr__(self, "image_centroids", _centroids(colours, self.image_vectors, self.has_image))

    @property
    def dim(self) -> int:
        return int(self.text_vectors.shape[1])


@dataclass(frozen=True)
class SyntheticProduct:
    source: dict[str, Any]
    text_vector: np.ndarray
    image_vector: np.ndarray | None


def _centroids(colours: np.ndarray, vectors: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Mean vector of each colour over ``rows`` (colours with no row get none)."""
    out: dict[str, np.ndarray] = {}
    for colour in np.unique(colours[rows]):
        if colour:
            out[str(colour)] = vectors[rows & (colours == colour)].mean(axis=0)
    return out


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


def recolour_title(title: str, old: str, new: str) -> str:
    """``title`` with the colour word ``old`` replaced by ``new`` (whole words, any case);
    ``new`` is put before the last word when ``old`` is not in it ("Men Shirt" -> "Men Navy Shirt")."""
    if not old or not new or old == new:
        return title
    pattern = re.compile(rf"\b{re.escape(old)}\b", flags=re.IGNORECASE)
    if pattern.search(title):
        return pattern.sub(new, title)
    head, _, last = title.rpartition(" ")
    return f"{head} {new} {last}" if head else f"{new} {title}"


def _noise(rng: np.random.Generator, rows: int, dim: int, norm: float) -> np.ndarray:
    return rng.standard_normal((rows, dim)).astype(np.float32) * np.float32(norm / np.sqrt(dim))


def _shift(centroids: Mapping[str, np.ndarray], old: str, new: str) -> np.ndarray | float:
    if old == new or old not in centroids or new not in centroids:
        return 0.0
    return centroids[new] - centroids[old]


def make_block(base: BaseCatalog, block: int, config: SynthesisConfig) -> list[SyntheticProduct]:
    """Products ``block*BLOCK .. block*BLOCK + BLOCK - 1``, reproducible from (seed, block) alone."""
    rng = np.random.default_rng([config.seed, block])
    n = len(base.sources)
    bases = rng.integers(n, size=BLOCK)
    donors = rng.integers(n, size=BLOCK)
    swap_colour = rng.random(BLOCK) < config.colour_swap
    swap_attrs = rng.random((BLOCK, len(SWAPPED_ATTRIBUTES))) < config.attribute_swap
    text_noise = _noise(rng, BLOCK, base.dim, config.noise)
    image_noise = _noise(rng, BLOCK, base.dim, config.noise)
    text = base.text_vectors[bases] + text_noise
    image = base.image_vectors[bases] + image_noise
    products: list[SyntheticProduct] = []
    for row in range(BLOCK):
        source, donor = dict(base.sources[bases[row]]), base.sources[donors[row]]
        old = str(source.get("base_colour") or "")
        new = str(donor.get("base_colour") or "") if swap_colour[row] else old
        if new != old:
            source["base_colour"] = new
            source["title"] = recolour_title(str(source.get("title") or ""), old, new)
            text[row] += _shift(base.text_centroids, old, new)
            image[row] += _shift(base.image_centroids, old, new)
        for column, name in enumerate(SWAPPED_ATTRIBUTES):
            if swap_attrs[row, column] and donor.get(name) is not None:
                source[name] = donor[name]
        source["id"] = f"{config.id_prefix}{block * BLOCK + row:07d}"
        products.append(SyntheticProduct(source, text[row], image[row] if base.has_image[bases[row]] else None))
    text_unit, image_unit = unit_rows(text), unit_rows(image)
    return [SyntheticProduct(p.source, text_unit[i], None if p.image_vector is None else image_unit[i])
            for i, p in enumerate(products)]


def synthesize(base: BaseCatalog, start: int, stop: int, config: SynthesisConfig) -> Iterator[SyntheticProduct]:
    """Products ``start .. stop - 1`` (any range: whole blocks are made and the edges cut)."""
    if not 0 <= start <= stop:
        raise ConfigError("need 0 <= start <= stop", setting="range", start=start, stop=stop)
    for block in range(start // BLOCK, -(-stop // BLOCK)):
        first = block * BLOCK
        for offset, product in enumerate(make_block(base, block, config)):
            if start <= first + offset < stop:
                yield product


def row_of(doc_id: str, config: SynthesisConfig) -> int:
    """The row (= number) of a synthetic product from its id: ``s0001234`` -> 1234."""
    if not doc_id.startswith(config.id_prefix):
        raise ConfigError("not a synthetic product id", setting="id", value=doc_id)
    return int(doc_id[len(config.id_prefix):])


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None,
                batch: int = 200_000) -> np.ndarray:
    """Brute-force top ``k`` row numbers of ``matrix`` by dot product for each query (unit vectors:
    dot product ranks as cosine does), best first; ``rows`` limits the search to those row numbers.
    Processed in ``batch`` rows at a time so a 1M x 256 matrix needs no second copy."""
    candidates = np.arange(matrix.shape[0]) if rows is None else np.asarray(rows)
    best_scores = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((queries.shape[0], 0), dtype=np.int64)
    for begin in range(0, len(candidates), batch):
        chunk = candidates[begin:begin + batch]
        scores = queries @ matrix[chunk].T
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_rows, np.broadcast_to(chunk, (queries.shape[0], len(chunk)))], axis=1)
        keep = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_rows = np.take_along_axis(ids, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)
