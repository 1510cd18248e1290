"""Every command's ``--catalog`` takes a catalog directory or a catalog file, and says the same in --help.

Parse the real arguments, then run the command up to the point where it has
resolved the catalog (the heavy step after it is replaced); no Elasticsearch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog import CATALOG_HELP, CatalogLocation
from mmsearch.cli import build_parser
from mmsearch.config import PROJECT_ROOT
from mmsearch.exceptions import ConfigError


class Reached(Exception):
    """Raised by a stand-in for the step after catalog resolution: carries what it was given."""

    def __init__(self, value: Any) -> None:
        super().__init__("reached")
        self.value = value


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    root = tmp_path / "cat"
    (root / "images").mkdir(parents=True)
    (root / "images" / "1.jpg").write_bytes(b"jpeg")
    products = [{"id": 1, "title": "Red Shirt", "article_type": "Shirts", "gender": "Men", "base_colour": "Red",
                 "image": "images/1.jpg"},
                {"id": 2, "title": "Blue Shirt", "article_type": "Shirts", "gender": "Men", "base_colour": "Blue"}]
    (root / "products.jsonl").write_text("".join(json.dumps(p) + "\n" for p in products))
    (root / "dev_queries.jsonl").write_text(json.dumps({"qid": "q1", "query": "red shirt",
                                                        "intent": {"type": "Shirts", "colour": "Red"}}) + "\n")
    return root


def _forms(catalog: Path) -> list[Path]:
    return [catalog, catalog / "products.jsonl"]


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _subparser_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {k}": v for k, v in _subparser_actions(sub).items()})
    return out


def test_every_mmsearch_catalog_option_has_the_same_help():
    commands = {name: sub for name, sub in _subparser_actions(build_parser()).items()
                if any("--catalog" in a.option_strings for a in sub._actions)}
    assert {"index build", "index validate", "models train-alignment", "models eval", "eval judgments",
            "eval run", "eval tune", "demo"} <= set(commands)
    for name, sub in commands.items():
        action = next(a for a in sub._actions if "--catalog" in a.option_strings)
        assert action.help == CATALOG_HELP, name


@pytest.mark.parametrize("command", ["build", "validate"])
def test_index_commands_take_both_forms(catalog, command):
    from indexer.cli import _catalog

    for form in _forms(catalog):
        config = _catalog(_parse("index", command, "--catalog", str(form)))
        assert config.path == catalog / "products.jsonl" and config.image_root == catalog.resolve()
    photos = catalog / "photos"
    config = _catalog(_parse("index", "build", "--catalog", str(catalog), "--image-root", str(photos)))
    assert config.image_root == photos.resolve()
    with pytest.raises(ConfigError, match="no products.jsonl"):
        _catalog(_parse("index", command, "--catalog", str(catalog / "images")))


def test_models_train_alignment_takes_both_forms(catalog, tmp_path, monkeypatch):
    def build(location: CatalogLocation, *args: Any, **kwargs: Any) -> Path:
        raise Reached(location)

    # The real module imports torch; the stand-in only records what _train passes on.
    monkeypatch.setitem(sys.modules, "onnx_models.alignment", types.SimpleNamespace(build=build))
    for form in _forms(catalog):
        args = _parse("models", "train-alignment", "--catalog", str(form), "--out", str(tmp_path / "m"))
        with pytest.raises(Reached) as reached:
            args.handler(args)
        assert reached.value.value.products_file == catalog / "products.jsonl"
        assert reached.value.value.root_dir == catalog
    args = _parse("models", "train-alignment", "--catalog", str(tmp_path / "none"), "--out", str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="catalog not found"):
        args.handler(args)


def test_models_eval_takes_both_forms(catalog, monkeypatch, capsys):
    import onnx_models.evaluate
    import onnx_models.runtime

    seen: list[CatalogLocation] = []

    def evaluate_package(encoder: Any, location: CatalogLocation, **kwargs: Any) -> dict[str, Any]:
        seen.append(location)
        return {"embeddings": (None, None)}

    monkeypatch.setattr(onnx_models.runtime.Encoder, "load", classmethod(lambda cls, *a, **k: object()))
    monkeypatch.setattr(onnx_models.evaluate, "evaluate_package", evaluate_package)
    for form in _forms(catalog):
        args = _parse("models", "eval", "model-dir", "--catalog", str(form))
        assert args.handler(args) == 0
    assert [s.root_dir for s in seen] == [catalog, catalog]
    capsys.readouterr()


def test_eval_judgments_takes_both_forms(catalog, tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    args = _parse("eval", "judgments", "--catalog", str(catalog), "--out", str(out))
    assert args.handler(args) == 0
    first = out.read_text()
    assert json.loads(capsys.readouterr().out)["skipped_records"] == 0
    args = _parse("eval", "judgments", "--catalog", str(catalog / "products.jsonl"),
                  "--queries", str(catalog / "dev_queries.jsonl"), "--out", str(out))
    assert args.handler(args) == 0
    assert out.read_text() == first and json.loads(first)["grades"] == {"1": 2, "2": 1}
    args = _parse("eval", "judgments", "--catalog", str(catalog / "products.jsonl"), "--out", str(out))
    with pytest.raises(ConfigError, match="--queries"):
        args.handler(args)


def test_eval_judgments_counts_bad_lines(catalog, tmp_path, capsys):
    with (catalog / "products.jsonl").open("a") as sink:
        sink.write("{broken\n")
    args = _parse("eval", "judgments", "--catalog", str(catalog), "--out", str(tmp_path / "j.jsonl"))
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped_records"] == 1 and "products.jsonl:3" in captured.err


@pytest.mark.parametrize("command", ["run", "tune"])
def test_eval_run_and_tune_resolve_the_image_root(catalog, command):
    from query_service.relevance.cli import _image_root

    extra = ["--variants", "v.yaml"] if command == "run" else []
    for form in _forms(catalog):
        args = _parse("eval", command, "--judgments", "j.jsonl", "--catalog", str(form), "--out", "o", *extra)
        assert _image_root(args) == catalog
    assert _image_root(_parse("eval", command, "--judgments", "j.jsonl", "--out", "o", *extra)) is None


def test_demo_takes_both_forms_and_its_old_option_name(catalog, tmp_path):
    from mmsearch.demo import choose_catalog

    for option in ("--catalog", "--catalog-dir"):
        for form in _forms(catalog):
            args = _parse("demo", option, str(form))
            location = choose_catalog(args.catalog, args.sample, tmp_path)
            assert location.products_file == catalog / "products.jsonl" and location.root_dir == catalog
            assert location.name == form.name  # demo-<name>: the shared dir keeps its model package name


def _script(relative: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("script_" + Path(relative).stem, PROJECT_ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_indexing_takes_both_forms(catalog, tmp_path, monkeypatch, capsys):
    import onnx_models.runtime

    module = _script("benchmarks/indexing.py")
    monkeypatch.setattr(onnx_models.runtime.Encoder, "load", classmethod(lambda cls, *a, **k: object()))

    def encoder_only(encoder: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
        raise Reached(config)

    monkeypatch.setattr(module, "encoder_only", encoder_only)
    for form in _forms(catalog):
        monkeypatch.setattr(sys, "argv", ["indexing.py", "--model", "m", "--catalog", str(form)])
        with pytest.raises(Reached) as reached:
            module.main()
        assert reached.value.value.path == catalog / "products.jsonl"
        assert reached.value.value.image_root == catalog.resolve()
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("id\n1\n")
    monkeypatch.setattr(sys, "argv", ["indexing.py", "--model", "m", "--catalog", str(csv_file), "--limit", "1"])
    with pytest.raises(SystemExit):
        module.main()
    assert "needs a JSONL catalog" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["indexing.py", "--model", "m", "--catalog", str(tmp_path / "none")])
    with pytest.raises(SystemExit):
        module.main()
    assert "catalog not found" in capsys.readouterr().err


def test_benchmarks_encoders_takes_both_forms(catalog, tmp_path, monkeypatch, capsys):
    module = _script("benchmarks/encoders.py")

    def ensure_quantized(model_dir: Path, out_dir: Path, **options: Any) -> Path:
        if "calibration_images" in options:
            raise Reached(options["calibration_images"])
        return out_dir

    monkeypatch.setattr(module, "ensure_quantized", ensure_quantized)
    for form in _forms(catalog):
        monkeypatch.setattr(sys, "argv", ["encoders.py", "--model", str(tmp_path / "m"), "--catalog", str(form)])
        with pytest.raises(Reached) as reached:
            module.main()
        assert reached.value.value == form
    monkeypatch.setattr(sys, "argv", ["encoders.py", "--catalog", str(tmp_path / "none")])
    with pytest.raises(SystemExit):
        module.main()
    assert "catalog not found" in capsys.readouterr().err


def test_experiments_takes_both_forms(catalog, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from onnx_models import experiments

    seen: list[CatalogLocation] = []

    def run_group(location: CatalogLocation, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        seen.append(location)
        return []

    monkeypatch.setattr(experiments, "run_group", run_group)
    for form in _forms(catalog):
        assert experiments.main(["--catalog", str(form), "--only", "collapse", "--out", str(tmp_path / "x.json")]) == 0
    assert [s.products_file for s in seen] == [catalog / "products.jsonl"] * 2
    with pytest.raises(SystemExit):
        experiments.main(["--catalog", str(tmp_path / "none")])
    assert "catalog not found" in capsys.readouterr().err
