"""The benchmark's corpus generator (bench/generate.py), for tests that need many realistic seeds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

GENERATOR = Path(__file__).resolve().parent.parent / "bench" / "generate.py"


def load_generator() -> ModuleType:
    """bench/ is a folder of scripts, not a package: load the file itself."""
    if "bench_generate" in sys.modules:
        return sys.modules["bench_generate"]
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def generate_corpus(folder: Path, count: int, seed: int = 1) -> Path:
    """`count` generated seed files in `folder`."""
    load_generator().generate(folder, count, seed)
    return folder
