"""Generate a small synthetic catalog for users who do not have the shared fashion data.

Same schema as the real catalog (see docs/operations.md): JSONL products with
title, facets and, for most products, a photo-like PNG. Images are simple
drawings whose colour is the product's ``base_colour`` and whose silhouette
depends on the article type, so that colour and type are learnable from
pixels and the demo's image queries behave sensibly. Deterministic per seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (20, 20, 20), "White": (245, 245, 245), "Blue": (30, 80, 200), "Navy Blue": (20, 30, 90),
    "Red": (200, 30, 30), "Green": (30, 150, 60), "Yellow": (235, 210, 40), "Pink": (240, 130, 180),
    "Grey": (128, 128, 128), "Brown": (120, 70, 30), "Purple": (120, 40, 150), "Orange": (240, 130, 20),
}
# article type -> (master, sub, silhouette)
TYPES: dict[str, tuple[str, str, str]] = {
    "Tshirts": ("Apparel", "Topwear", "tee"), "Shirts": ("Apparel", "Topwear", "tee"),
    "Jeans": ("Apparel", "Bottomwear", "trousers"), "Trousers": ("Apparel", "Bottomwear", "trousers"),
    "Dresses": ("Apparel", "Dress", "dress"), "Casual Shoes": ("Footwear", "Shoes", "shoe"),
    "Sports Shoes": ("Footwear", "Shoes", "shoe"), "Handbags": ("Accessories", "Bags", "bag"),
    "Watches": ("Accessories", "Watches", "watch"), "Caps": ("Accessories", "Headwear", "cap"),
}
BRANDS = ("Acme", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip")
GENDERS = ("Men", "Women", "Unisex")
SEASONS = ("Summer", "Winter", "Fall", "Spring")
USAGES = ("Casual", "Formal", "Sports")


@dataclass(frozen=True)
class SampleSpec:
    n_products: int = 600
    image_share: float = 0.8
    seed: int = 7
    image_size: int = 224

    def __post_init__(self) -> None:
        if not 1 <= self.n_products <= 100_000:
            raise ValueError("n_products must be in 1..100000")
        if not 0.0 <= self.image_share <= 1.0:
            raise ValueError("image_share must be in [0, 1]")


def _draw(silhouette: str, rgb: tuple[int, int, int], size: int, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    s = size
    j = rng.randint(-8, 8)  # a little jitter so that no two photos are identical
    shapes = {
        "tee": [(0.2, 0.2), (0.8, 0.2), (0.95, 0.4), (0.78, 0.45), (0.75, 0.9), (0.25, 0.9), (0.22, 0.45), (0.05, 0.4)],
        "trousers": [(0.3, 0.1), (0.7, 0.1), (0.75, 0.95), (0.55, 0.95), (0.5, 0.4), (0.45, 0.95), (0.25, 0.95)],
        "dress": [(0.4, 0.1), (0.6, 0.1), (0.65, 0.4), (0.85, 0.92), (0.15, 0.92), (0.35, 0.4)],
        "shoe": [(0.1, 0.55), (0.45, 0.5), (0.6, 0.35), (0.75, 0.4), (0.92, 0.65), (0.9, 0.75), (0.1, 0.75)],
        "bag": [(0.2, 0.35), (0.8, 0.35), (0.85, 0.88), (0.15, 0.88)],
        "cap": [(0.2, 0.6), (0.3, 0.35), (0.5, 0.28), (0.7, 0.35), (0.8, 0.6), (0.95, 0.65), (0.2, 0.65)],
    }
    if silhouette == "watch":
        draw.rectangle([0.42 * s, 0.05 * s, 0.58 * s, 0.95 * s], fill=(60, 60, 60))
        draw.ellipse([0.28 * s + j, 0.3 * s, 0.72 * s + j, 0.7 * s], fill=rgb, outline=(30, 30, 30), width=4)
    else:
        draw.polygon([(x * s + j, y * s + j) for x, y in shapes[silhouette]], fill=rgb, outline=(40, 40, 40))
    if silhouette == "bag":
        draw.arc([0.35 * s, 0.12 * s, 0.65 * s, 0.5 * s], 180, 360, fill=(40, 40, 40), width=5)
    return image


def generate(out_dir: Path, spec: SampleSpec | None = None) -> Path:
    """Write ``products.jsonl`` and ``images/`` into ``out_dir``; returns the JSONL path."""
    spec = spec or SampleSpec()
    rng = random.Random(spec.seed)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    path = out_dir / "products.jsonl"
    with path.open("w", encoding="utf-8") as sink:
        for number in range(spec.n_products):
            article_type = rng.choice(list(TYPES))
            master, sub, silhouette = TYPES[article_type]
            colour = rng.choice(list(COLOURS))
            gender = rng.choice(GENDERS)
            brand = rng.choice(BRANDS)
            product = {
                "id": f"s{number:05d}",
                "title": f"{brand} {gender} {colour} {article_type.rstrip('s') if article_type != 'Jeans' else article_type}",
                "gender": gender, "master_category": master, "sub_category": sub, "article_type": article_type,
                "base_colour": colour, "season": rng.choice(SEASONS), "year": rng.randint(2010, 2018),
                "usage": rng.choice(USAGES),
            }
            if rng.random() < spec.image_share:
                product["image"] = f"images/{product['id']}.png"
                _draw(silhouette, COLOURS[colour], spec.image_size, rng).save(out_dir / product["image"])
            sink.write(json.dumps(product) + "\n")
    (out_dir / "README.md").write_text("Synthetic catalog generated by mmsearch.sample_catalog; same schema as the "
                                       "fashion-products catalog.\n")
    return path
