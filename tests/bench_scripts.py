"""Scripts of bench/ that tests use too: the corpus generator (bench/generate.py),
for tests that need many realistic seeds, and the README's nginx site (bench/nginx_site.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_bench(name: str) -> ModuleType:
    """bench/ is a folder of scripts, not a package: load bench/NAME.py itself, once."""
    module_name = f"bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def load_generator() -> ModuleType:
    return load_bench("generate")


def generate_corpus(folder: Path, count: int, seed: int = 1) -> Path:
    """`count` generated seed files in `folder`."""
    load_generator().generate(folder, count, seed)
    return folder
