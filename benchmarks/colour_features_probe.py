"""Would pixel colour features name a photo's catalog colour better than the image graph's classifier?

For every photographed product of the catalog: its image vector (from the index), the training's
colour histogram (``onnx_models.heads.ColourHistogram``, 4 bins per RGB channel over the
foreground) and an HSV histogram of the non-white foreground computed here (hue x saturation
12 x 4, value 8, saturation x value 4 x 4, mean and spread of RGB, foreground share).
A logistic regression per feature set is fitted on the package's *train* split and scored
(top-1 colour) on its *val* split; the test split is not used. The confusions of the best set
are listed. Findings: docs/alignment.md, "Photo attributes".

    ES_URL=... MMSEARCH_ALIAS=products MMSEARCH_MODEL_DIR=<package> \\
    python benchmarks/colour_features_probe.py --out docs/relevance/photo/colour_features_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import photo_queries  # noqa: E402

from indexer.catalog import catalog_or_default  # noqa: E402
from mmsearch.config import Settings  # noqa: E402
from onnx_models.catalog import image_records, split_records  # noqa: E402
from onnx_models.backbones import ColourConfig, ColourHistogram  # noqa: E402
from onnx_models.images import ImageSpec, preprocess  # noqa: E402
from onnx_models.runtime import Encoder  # noqa: E402

WHITE = 0.92  # a pixel whose three channels are all above this is background (catalog photos are on white)


def hsv_features(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB").resize((96, 96))
    rgb = np.asarray(image).astype(np.float32) / 255.0
    foreground = ~(rgb > WHITE).all(-1)
    if foreground.sum() < 50:  # a white product: use every pixel
        foreground = np.ones(rgb.shape[:2], bool)
    hsv = np.asarray(image.convert("HSV")).astype(np.float32)[foreground] / 255.0
    count = float(foreground.sum())
    hue_sat = np.histogram2d(hsv[:, 0], hsv[:, 1], bins=[12, 4], range=[[0, 1], [0, 1]])[0].ravel() / count
    value = np.histogram(hsv[:, 2], bins=8, range=(0, 1))[0] / count
    sat_value = np.histogram2d(hsv[:, 1], hsv[:, 2], bins=[4, 4], range=[[0, 1], [0, 1]])[0].ravel() / count
    pixels = rgb[foreground]
    return np.concatenate([hue_sat, value, sat_value, pixels.mean(0), pixels.std(0), [foreground.mean()]])


@torch.inference_mode()
def training_histograms(encoder: Encoder, paths: list[Path]) -> np.ndarray:
    image = encoder.manifest["image"]
    spec = ImageSpec(size=image["size"], mean=tuple(image["mean"]), std=tuple(image["std"]),
                     resize_mode=image["resize_mode"], pad_colour=tuple(image["pad_colour"]), resample=image["resample"])
    module = ColourHistogram(ColourConfig(**image["colour_histogram"]), spec.mean, spec.std).eval()
    out = []
    for start in range(0, len(paths), 128):
        pixels = preprocess([Image.open(p).convert("RGB") for p in paths[start:start + 128]], spec)
        out.append(module(torch.from_numpy(pixels)).numpy())
    return np.concatenate(out)


def image_vectors(settings: Settings, ids: list[str]) -> np.ndarray:
    es, vectors = settings.es_client(), {}
    for start in range(0, len(ids), 500):
        body = {"size": 500, "query": {"ids": {"values": ids[start:start + 500]}},
                "_source": {"includes": ["image_vector"], "exclude_vectors": False}}
        for hit in es.search(index=settings.products_alias, body=body)["hits"]["hits"]:
            vectors[hit["_id"]] = hit["_source"].get("image_vector")
    return np.stack([np.asarray(vectors[i], np.float32) for i in ids])


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    location, settings = catalog_or_default(None), Settings.load()
    encoder = Encoder.load(settings.model_dir)
    parts = split_records(image_records(location), photo_queries.package_split(encoder))
    rows = [(str(r["id"]), part, str(r.get("base_colour") or ""), location.root_dir / str(r["image"]))
            for part in ("train", "val") for r in parts[part]]
    ids, labels = [r[0] for r in rows], np.array([r[2] for r in rows])
    train = np.array([r[1] == "train" for r in rows])
    vectors, hist = image_vectors(settings, ids), training_histograms(encoder, [r[3] for r in rows])
    hsv = np.stack([hsv_features(r[3]) for r in rows])
    sets = {"image vector": vectors, "image vector + training histogram": np.hstack([vectors, hist]),
            "image vector + HSV": np.hstack([vectors, hsv]), "HSV alone": hsv,
            "training histogram + HSV": np.hstack([hist, hsv]),
            "image vector + training histogram + HSV": np.hstack([vectors, hist, hsv])}
    report: dict[str, Any] = {"train": int(train.sum()), "val": int((~train).sum()), "val top-1 colour": {}}
    best = None
    warnings.filterwarnings("ignore")  # lbfgs convergence notes on the scaled features
    for name, features in sets.items():
        scaled = StandardScaler().fit(features[train]).transform(features)
        model = LogisticRegression(C=0.1, max_iter=2000).fit(scaled[train], labels[train])
        accuracy = float(model.score(scaled[~train], labels[~train]))
        report["val top-1 colour"][name] = round(accuracy, 3)
        print(f"{name}: {accuracy:.3f}", flush=True)
        if best is None or accuracy > best[0]:
            best = (accuracy, name, model.predict(scaled[~train]))
    assert best is not None
    confusions = Counter((a, b) for a, b in zip(labels[~train], best[2]) if a != b)
    report["confusions of the best set"] = {"set": best[1], "errors": sum(confusions.values()),
                                            "top": [[a, b, n] for (a, b), n in confusions.most_common(10)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["confusions of the best set"]))


if __name__ == "__main__":
    main()
