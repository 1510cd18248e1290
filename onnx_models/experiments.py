"""Head-training experiments on cached features: loss collapse and the colour study (torch).

    python -m onnx_models.experiments [--catalog "$MMSEARCH_CATALOG_DIR"] \
        --out .state/experiments/alignment.json [--only collapse|colour|unfreeze|backbone]

--catalog is a catalog directory (with products.jsonl) or catalog file
(docs/indexing.md, "Catalog location"); without it, the shared catalog as
``make demo`` finds it (MMSEARCH_CATALOG_DIR, else ../shared/data/fashion-products).

Every variant trains on the same split with the same seed and is scored on the
same held-out test products; only the named setting changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from indexer.catalog import CATALOG_HELP, CatalogLocation, catalog_or_default
from mmsearch.exceptions import ConfigError
from onnx_models.alignment import train_alignment
from onnx_models.backbones import ColourConfig
from onnx_models.text import TextTemplate
from onnx_models.train import TrainConfig

BASE = TrainConfig(progress=False, aux_weight=0.0)  # rows below add aux explicitly
COLUMNS = ("t2i_R@1", "t2i_R@10", "t2i_MRR", "i2t_R@10", "t2i_P@10_type", "t2i_P@10_type_colour",
           "i2i_P@10_type", "i2i_P@10_type_colour", "image_mean_pairwise_cos")
#: The same held-out queries against all 8,083 photos (closest to the prototype's 9.6k gallery).
FULL_COLUMNS = ("full_gallery_t2i_R@10", "full_gallery_t2i_P@10_type_colour", "full_gallery_i2i_P@10_type_colour")

GROUPS: dict[str, dict[str, dict[str, Any]]] = {
    "collapse": {
        "infonce": {},
        "cosine (positive-only)": {"loss": "cosine"},
        "mse to 1 (positive-only)": {"loss": "mse"},
    },
    "colour": {
        "linear head, pooled features only (prototype-like)": {"head": "linear", "colour": None, "flip_augment": False},
        "mlp head": {"colour": None, "flip_augment": False},
        "mlp + hflip": {"colour": None},
        "mlp + hflip + colour hist, shared LayerNorm": {"colour_branch_norm": False},
        "mlp + hflip + colour hist, own LayerNorm": {"colour_branch_norm": True, "colour_gain": 1.0},
        "mlp + hflip + colour hist, own LayerNorm, gain 2": {"colour_branch_norm": True, "colour_gain": 2.0},
        "mlp + hflip + colour hist + aux type/colour loss 0.3": {"aux_weight": 0.3},
        "mlp + hflip + aux type/colour loss 0.3, no colour hist": {"aux_weight": 0.3, "colour": None},
        "mlp + hflip + colour hist + soft positives 0.3": {"soft_positive": 0.3},
        "mlp + hflip + colour hist + soft positives 0.3 + aux 0.3": {"soft_positive": 0.3, "aux_weight": 0.3},
        "mlp + hflip + colour hist + aux 1.0": {"aux_weight": 1.0},
        "mlp + hflip + colour hist + soft positives 0.5 + aux 1.0": {"soft_positive": 0.5, "aux_weight": 1.0},
    },
    # Chosen configuration (aux 1.0) with more of the backbones trained (partial unfreezing).
    "unfreeze": {
        "frozen backbones (chosen config)": {"aux_weight": 1.0},
        "+ last MiniLM layer": {"aux_weight": 1.0, "unfreeze_text_layers": 1},
        "+ last 2 MiniLM layers": {"aux_weight": 1.0, "unfreeze_text_layers": 2},
        "+ last EfficientNet stage": {"aux_weight": 1.0, "unfreeze_image_stages": 1},
        "+ last MiniLM layer + last EfficientNet stage": {"aux_weight": 1.0, "unfreeze_text_layers": 1,
                                                          "unfreeze_image_stages": 1},
        # Compare with "lite0 (224 px), no hflip" in the backbone group (same config, frozen).
        "+ last EfficientNet stage, no hflip": {"aux_weight": 1.0, "unfreeze_image_stages": 1,
                                                "flip_augment": False},
    },
    # Bigger image backbones, no hflip view (it made no difference above and doubles feature time).
    "backbone": {
        "lite0 (224 px), no hflip": {"aux_weight": 1.0, "flip_augment": False},
        "lite1 (240 px), no hflip": {"aux_weight": 1.0, "flip_augment": False, "image_arch": "efficientnet_lite1"},
        "lite2 (260 px), no hflip": {"aux_weight": 1.0, "flip_augment": False, "image_arch": "efficientnet_lite2"},
    },
}


def run_group(catalog: Path | CatalogLocation, cache: Path, variants: dict[str, dict[str, Any]], done: list[dict[str, Any]],
              save: Any, pattern: str | None = None) -> list[dict[str, Any]]:
    """Train each variant not yet in ``done`` (or matching ``pattern``); ``save`` persists after each one."""
    rows = {row["variant"]: row for row in done}
    backbones: dict[str, Any] = {}
    for label, overrides in variants.items():
        if label in rows and not (pattern and pattern in label):
            continue
        if pattern and pattern not in label:
            continue
        cfg = replace(BASE, **overrides)
        key = cfg.image_arch
        started = time.monotonic()
        result, backbones[key] = train_alignment(catalog, cfg, cache, backbones=backbones.get(key))
        rows[label] = {"variant": label, "overrides": {k: str(v) for k, v in overrides.items()},
                       "best_epoch": result.heads.best_epoch, "temperature": result.heads.temperature,
                       "seconds": round(time.monotonic() - started, 1), "sizes": result.sizes,
                       "metrics": result.test_metrics}
        print(json.dumps({"variant": label, **{c: round(result.test_metrics[c], 3) for c in COLUMNS}}),
              file=sys.stderr)
        save([rows[k] for k in variants if k in rows])
    return [rows[k] for k in variants if k in rows]


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = COLUMNS + FULL_COLUMNS
    lines = ["| variant | " + " | ".join(columns) + " | best epoch | train s |", "|---" * (len(columns) + 3) + "|"]
    for row in rows:
        values = [f"{row['metrics'][c]:.3f}" if c in row["metrics"] else "" for c in columns]
        lines.append(f"| {row['variant']} | " + " | ".join(values) + f" | {row['best_epoch']} | {row['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=None, help=CATALOG_HELP)
    parser.add_argument("--cache-dir", type=Path, default=Path(".state/models/_features"))
    parser.add_argument("--out", type=Path, default=Path(".state/experiments/alignment.json"))
    parser.add_argument("--only", choices=sorted(GROUPS), action="append")
    parser.add_argument("--variant", default=None, help="re-run only variants whose label contains this")
    args = parser.parse_args(argv)
    try:
        catalog = catalog_or_default(args.catalog)
    except ConfigError as exc:
        parser.error(str(exc))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for group in args.only or list(GROUPS):
        def save(rows: list[dict[str, Any]], group: str = group) -> None:
            results[group] = rows
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))

        rows = run_group(catalog, args.cache_dir, GROUPS[group], results.get(group, []), save, args.variant)
        print(f"\n### {group}\n\n{markdown(rows)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
