"""How often can an encoder name a type that no word of the query names? (docs/relevance.md, "Shopper language")

Held-out simulation on the *tune* split: the parser is built without the synonyms that were
added after reading that split's failures (the block "Added after reading the failures" in
``understanding_synonyms.py``, and every later block), so the tune queries' type words are
as unknown to it as a new shopper's would be. For each query whose words name no type, three
guesses are scored against the query's intended type:

- ``whole``: the aligned text tower's vector of the whole query vs the type names' vectors
  (what ``QueryParser.type_by_embedding`` does, with its margin);
- ``leftover``: the same with only the words the lexicon did not read;
- ``minilm``: raw MiniLM sentence vectors (no alignment head) of the leftover words vs the
  lowercased type names, at margins 0, 0.02 and 0.05 (needs torch: the ``export`` extra).

    ES_URL=... MMSEARCH_ALIAS=relevance-products python benchmarks/type_fallback_probe.py --model <package>
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from mmsearch.config import Settings
from onnx_models.runtime import Encoder
from query_service import understanding, understanding_synonyms
from query_service.engine import SearchEngine

FIRST_TUNE_DERIVED_BLOCK = "# Added after reading the failures"


def tune_free_synonyms() -> dict[str, tuple[str, tuple[str, ...], float]]:
    source = Path(understanding_synonyms.__file__).read_text()
    later = source[source.index(FIRST_TUNE_DERIVED_BLOCK):]
    derived = set(re.findall(r'"([^"]+)": \(', later))
    return {k: v for k, v in understanding_synonyms.SYNONYMS.items() if k not in derived}


def leftover(parser: understanding.QueryParser, text: str) -> str:
    """The words no lexicon span reads (stopwords dropped)."""
    words = understanding.tokens(text)
    keys = [understanding.normalise_token(w) for w in words]
    used = [False] * len(keys)
    for size in range(min(understanding.MAX_SPAN, len(keys)), 0, -1):
        for start in range(len(keys) - size + 1):
            if not any(used[start:start + size]) and tuple(keys[start:start + size]) in parser.lexicon:
                used[start:start + size] = [True] * size
    return " ".join(w for w, u in zip(words, used) if not u and w not in understanding_synonyms.STOPWORDS)


def main() -> None:
    parser_args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser_args.add_argument("--model", type=Path, required=True)
    parser_args.add_argument("--queries", type=Path, default=Path("docs/relevance/shopper/tune.jsonl"))
    args = parser_args.parse_args()
    settings = Settings.load()
    encoder = Encoder.load(args.model)
    engine = SearchEngine(settings.es_client(), encoder, settings)
    engine.warm_up()
    full = engine.understander.parser()
    assert full is not None, "no vocabulary: is the alias there?"
    vectors = {name: full.type_matrix[i] for i, name in enumerate(full.type_names)}
    parser = understanding.QueryParser({k: sorted(v) for k, v in full.vocabulary.items()}, vectors,
                                       synonyms=tune_free_synonyms())
    queries = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    unread = [q for q in queries if "article_type" not in parser.read_words(q["query"])]
    report: dict[str, object] = {"queries": len(queries), "type_not_named_by_words": len(unread)}
    for name, text_of in (("whole", lambda q: q["query"]), ("leftover", lambda q: leftover(parser, q["query"]))):
        right = wrong = 0
        for query in unread:
            text = text_of(query)
            guess = parser.type_by_embedding(encoder.encode_texts([text])[0]) if text else None
            if guess is not None:
                right += query["intent"]["type"] in guess.values
                wrong += query["intent"]["type"] not in guess.values
        report[name] = {"right": right, "wrong": wrong, "no_guess": len(unread) - right - wrong}
    report["minilm"] = minilm_guesses(parser, unread)
    print(json.dumps(report, indent=1))


def minilm_guesses(parser: understanding.QueryParser, unread: list[dict]) -> dict[str, dict[str, int]]:
    import torch

    from onnx_models.backbones import MeanPooledText, minilm_dir
    from onnx_models.text import TextTokenizer

    model = MeanPooledText(minilm_dir()).eval()
    tokenizer = TextTokenizer(minilm_dir() / "tokenizer.json", max_length=32, pad_token="[PAD]")

    def embed(texts: list[str]) -> np.ndarray:
        feeds = tokenizer(texts)
        with torch.no_grad():
            out = model(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])).numpy()
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    names = parser.type_names
    types = embed([n.lower() for n in names])
    out = {}
    for margin in (0.0, 0.02, 0.05):
        right = wrong = 0
        for query in unread:
            scores = types @ embed([leftover(parser, query["query"]) or query["query"]])[0]
            order = np.argsort(-scores)
            if scores[order[0]] - scores[order[1]] >= margin:
                right += names[order[0]] == query["intent"]["type"]
                wrong += names[order[0]] != query["intent"]["type"]
        out[f"margin {margin}"] = {"right": right, "wrong": wrong}
    return out


if __name__ == "__main__":
    main()
