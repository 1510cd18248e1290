"""The GPU runtime installs cleanly: a fresh venv with the `gpu` extra holds exactly one onnxruntime.

Why this matters: the distributions ``onnxruntime`` and ``onnxruntime-gpu`` both write the same
``onnxruntime/`` package. When the base dependencies held ``onnxruntime`` and the ``gpu`` extra
added ``onnxruntime-gpu``, whichever was installed last won, and uninstalling either broke the
other. The runtime is now one of two extras (``cpu``, ``gpu``) and the base holds neither.

No GPU is needed: ``get_available_providers()`` lists the providers compiled into the installed
build (CUDA for onnxruntime-gpu), whether or not a CUDA device and its libraries are present.

The onnxruntime-gpu wheel is large (about 250 MB): wheels are cached in ``.state/wheels`` (pip
``--find-links``) so a rerun does not download it again. Marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mmsearch.config import PROJECT_ROOT

WHEEL_CACHE = PROJECT_ROOT / ".state" / "wheels"
RUNTIME_DISTRIBUTIONS = {"onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                         "onnxruntime-silicon", "onnxruntime-training"}


def _run(*args: str | Path, timeout: float = 900) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _extra(name: str) -> list[str]:
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][name])


def test_base_dependencies_hold_no_runtime_and_each_extra_holds_one():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = {Requirement(r).name for r in project["dependencies"]}
    assert not base & RUNTIME_DISTRIBUTIONS, base & RUNTIME_DISTRIBUTIONS
    for extra, wanted in (("cpu", "onnxruntime"), ("gpu", "onnxruntime-gpu")):
        names = {Requirement(r).name for r in project["optional-dependencies"][extra]}
        assert names & RUNTIME_DISTRIBUTIONS == {wanted}, (extra, names)
    for extra, requirements in project["optional-dependencies"].items():
        if extra not in ("cpu", "gpu"):
            names = {Requirement(r).name for r in requirements}
            assert not names & RUNTIME_DISTRIBUTIONS, (extra, names)


def test_missing_runtime_is_a_clear_error():
    # sys.modules[name] = None makes `import onnxruntime` raise ImportError, as in a venv without either extra.
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from mmsearch.exceptions import ModelError\n"
            "try:\n    import onnx_models.runtime\n"
            "except ModelError as exc:\n    print('MODEL_ERROR', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert "MODEL_ERROR" in out.stdout, out.stderr[-2000:]
    assert "mmsearch[cpu] or mmsearch[gpu]" in out.stdout


@pytest.mark.slow
def test_fresh_venv_with_the_gpu_extra_has_one_runtime_listing_cuda(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    # What pip would install for `.[gpu]` in this empty venv (the full resolution, nothing installed).
    report = tmp_path / "report.json"
    _run(*pip, "install", "--quiet", "--dry-run", "--ignore-installed", "--report", report,
         "--find-links", WHEEL_CACHE, f"{PROJECT_ROOT}[gpu]")
    resolved = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert resolved & RUNTIME_DISTRIBUTIONS == {"onnxruntime-gpu"}, sorted(resolved)
    # The real install: the project without its (many) base dependencies, then the gpu extra's
    # requirements and numpy, from the wheel cache when present.
    _run(*pip, "download", "--quiet", "--only-binary=:all:", "--dest", WHEEL_CACHE, *_extra("gpu"), "numpy")
    _run(*pip, "install", "--quiet", "--no-deps", PROJECT_ROOT)
    _run(*pip, "install", "--quiet", "--find-links", WHEEL_CACHE, *_extra("gpu"), "numpy")
    installed = {row["name"].lower() for row in json.loads(_run(*pip, "list", "--format=json"))}
    assert installed & RUNTIME_DISTRIBUTIONS == {"onnxruntime-gpu"}, sorted(installed)
    assert "mmsearch" in installed
    providers = json.loads(_run(python, "-c", "import json, onnxruntime; "
                                              "print(json.dumps(onnxruntime.get_available_providers()))"))
    print("providers:", providers)
    assert "CUDAExecutionProvider" in providers and "CPUExecutionProvider" in providers
