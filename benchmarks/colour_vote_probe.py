"""Would the photo's nearest catalog neighbours name its colour better than the classifier? (docs/alignment.md)

On the *tune* half of the held-out photos (``photo_queries.half_of``): the image graph's colour
classifier's top label, a score-weighted vote of the colour labels of the image->image leg's
top 20 hits (the photo itself and near-duplicates, score >= 0.995, left out), and mixtures
``a * classifier + (1 - a) * vote``; top-1 accuracy against the catalog colour.

    ES_URL=... MMSEARCH_ALIAS=relevance-products MMSEARCH_MODEL_DIR=<package> \\
    python benchmarks/colour_vote_probe.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import photo_queries  # noqa: E402

from indexer.catalog import catalog_or_default  # noqa: E402
from mmsearch.config import Settings  # noqa: E402
from onnx_models.catalog import image_records  # noqa: E402
from onnx_models.runtime import Encoder  # noqa: E402
from query_service.engine import SearchEngine  # noqa: E402
from query_service.ranking import RankingConfig, SearchRequest  # noqa: E402

MIXTURES = (0.3, 0.5, 0.7)
DUPLICATE_SCORE = 0.995


def main() -> None:
    location = catalog_or_default(None)
    settings = Settings.load()
    encoder = Encoder.load(settings.model_dir)
    split = photo_queries.package_split(encoder)
    engine = SearchEngine(settings.es_client(), encoder, settings)
    colour = {str(r["id"]): str(r.get("base_colour") or "") for r in image_records(location)}
    ranking = RankingConfig().with_overrides({"legs": {"image_image": 1.0}, "understanding": False})
    right = {"classifier": 0, "vote": 0, **{f"mix {a}": 0 for a in MIXTURES}}
    queries = photo_queries.held_out(location, split, "tune")
    for record in queries:
        own = str(record["id"])
        photo = (location.root_dir / str(record["image"])).read_bytes()
        _, guesses = encoder.encode_image_with_attributes(photo, top=len(encoder.photo_labels["base_colour"]))
        classifier = dict(guesses["base_colour"])
        votes: dict[str, float] = {}
        for hit in engine.search(SearchRequest(image=photo, size=21, explain=False), ranking)["hits"]:
            if hit["_id"] != own and hit["_score"] < DUPLICATE_SCORE:
                votes[colour.get(hit["_id"], "")] = votes.get(colour.get(hit["_id"], ""), 0.0) + hit["_score"]
        total = sum(votes.values()) or 1.0
        vote = {c: v / total for c, v in votes.items()}
        truth = colour[own]
        right["classifier"] += max(classifier, key=classifier.__getitem__) == truth
        right["vote"] += bool(vote) and max(vote, key=vote.__getitem__) == truth
        for a in MIXTURES:
            mixed = {c: a * classifier.get(c, 0.0) + (1 - a) * vote.get(c, 0.0) for c in set(classifier) | set(vote)}
            right[f"mix {a}"] += max(mixed, key=mixed.__getitem__) == truth
    print(json.dumps({"queries": len(queries), **{k: round(v / len(queries), 3) for k, v in right.items()}}))


if __name__ == "__main__":
    main()
