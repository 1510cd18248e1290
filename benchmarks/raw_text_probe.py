"""Would raw MiniLM sentence vectors retrieve better than the aligned text tower on shopper language?

Brute force over every product of the catalog, no Elasticsearch: each product's text as the
package renders it for ``text_vector`` (its manifest's text template), encoded twice: by the
package's text graph (the aligned 256-d space the ``text_text`` leg searches) and by the raw
MiniLM backbone (mean-pooled 384-d, as sentence-transformers does). Queries of a judged shopper
split are encoded the same two ways; NDCG@10 of the top 10 by cosine, and of score mixtures
``w * raw + (1 - w) * aligned``. No understanding, no filters: this is the plain text kNN leg.

    python benchmarks/raw_text_probe.py --model <package> --judgments .state/relevance/shopper_tune.jsonl \\
        --out docs/relevance/shopper/raw_text_probe_tune.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from indexer.catalog import catalog_or_default, iter_product_records
from onnx_models.backbones import MeanPooledText, minilm_dir
from onnx_models.runtime import Encoder
from onnx_models.text import TextTokenizer
from query_service.relevance.metrics import ndcg_at

MIXTURES = (0.3, 0.5, 0.7)


@torch.inference_mode()
def raw_vectors(texts: list[str], batch: int = 256) -> np.ndarray:
    model, tokenizer = MeanPooledText(minilm_dir()).eval(), TextTokenizer(minilm_dir() / "tokenizer.json", max_length=64)
    out = []
    for start in range(0, len(texts), batch):
        tokens = tokenizer(texts[start:start + batch])
        vectors = model(torch.from_numpy(tokens["input_ids"]), torch.from_numpy(tokens["attention_mask"])).numpy()
        out.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--judgments", type=Path, required=True)
    parser.add_argument("--catalog", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    encoder = Encoder.load(args.model)
    records = list(iter_product_records(catalog_or_default(args.catalog)))
    ids = [str(r["id"]) for r in records]
    texts = [encoder.template.render(r) for r in records]
    judgments = [json.loads(line) for line in args.judgments.read_text().splitlines() if line.strip()]
    queries = [j["query"] for j in judgments]
    aligned = (np.concatenate([encoder.encode_texts(texts[i:i + 512]) for i in range(0, len(texts), 512)]),
               encoder.encode_texts(queries))
    raw = (raw_vectors(texts), raw_vectors(queries))

    def ndcg(weight: float) -> float:
        scores = []
        for i, judgment in enumerate(judgments):
            similarity = weight * (raw[0] @ raw[1][i]) + (1 - weight) * (aligned[0] @ aligned[1][i])
            top = np.argpartition(-similarity, 10)[:10]
            top = top[np.argsort(-similarity[top])]
            scores.append(ndcg_at([ids[j] for j in top], {k: int(v) for k, v in judgment["grades"].items()}))
        return round(float(np.mean(scores)), 4)

    report = {"judgments": str(args.judgments), "queries": len(judgments), "products": len(ids),
              "model": encoder.name, "ndcg@10": {"aligned text tower": ndcg(0.0), "raw MiniLM": ndcg(1.0),
                                                  **{f"{w} raw + {1 - w:.1f} aligned": ndcg(w) for w in MIXTURES}}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
