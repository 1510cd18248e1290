"""A small but real model package for tests and CI (``build_test_model``).

Real MiniLM + EfficientNet-Lite0 weights; heads trained briefly on a catalog
subset. Built once per parameter set and code version, cached under
``cache_root``; a file lock makes concurrent test sessions wait for one build
instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

from onnx_models.manifest import MANIFEST

#: Bump when a code change alters what build_test_model produces.
CODE_VERSION = "4"  # 4: the image graph answers the type and colour classifiers
TEST_PARAMS = {"max_train_pairs": 1500, "max_eval_pairs": 400, "epochs": 25, "patience": 5,
               "flip_augment": False, "name": "mmsearch-test", "version": f"test-{CODE_VERSION}"}


def test_model_key(catalog_dir: Path) -> str:
    blob = json.dumps({"params": TEST_PARAMS, "code": CODE_VERSION, "catalog": str(Path(catalog_dir).resolve())},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_test_model(catalog_dir: Path, cache_root: Path) -> Path:
    """Path of a ready model package; builds it (a few minutes on 2 cores) when not cached."""
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    out_dir = cache_root / f"test-{test_model_key(catalog_dir)}"
    if (out_dir / MANIFEST).is_file():
        return out_dir
    with open(cache_root / ".test-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out_dir / MANIFEST).is_file():  # another process built it while we waited
            return out_dir
        # torch is imported only here: serving code and tests with a ready package never need it.
        from onnx_models.alignment import build
        from onnx_models.train import TrainConfig

        cfg = TrainConfig(progress=False, **TEST_PARAMS)  # type: ignore[arg-type]
        return build(Path(catalog_dir), out_dir, cfg, cache_dir=cache_root / "_features")
