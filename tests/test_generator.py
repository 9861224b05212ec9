"""bench/generate.py: a reproducible corpus, shaped like the samples, that seedfeeds reads cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_scripts import load_generator
from feeds.builder import check_files
from feeds.records import Record, read_record, scan_folder

COUNT = 200

bench_generate = load_generator()


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*.txt")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    bench_generate.generate(folder, COUNT, seed=7)
    return folder


@pytest.fixture(scope="module")
def records(corpus: Path) -> list[Record]:
    files, _ = scan_folder(corpus, ("*.txt",))
    return [read_record(seed)[0] for seed in files]


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with the same count and seed write the same file names with the same bytes."""
    bench_generate.generate(tmp_path / "a", COUNT, seed=3)
    bench_generate.generate(tmp_path / "b", COUNT, seed=3)
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")


def test_another_seed_gives_another_corpus(tmp_path: Path) -> None:
    """A different seed gives different files."""
    bench_generate.generate(tmp_path / "a", 20, seed=3)
    bench_generate.generate(tmp_path / "b", 20, seed=4)
    assert set(_contents(tmp_path / "a").values()).isdisjoint(_contents(tmp_path / "b").values())


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    """Generating into a folder that holds files raises rather than mixing two corpora."""
    (tmp_path / "old.txt").write_text("---\ntitle: x\n---\n")
    with pytest.raises(FileExistsError):
        bench_generate.generate(tmp_path, 5)


def test_writes_the_asked_number_of_files(corpus: Path) -> None:
    """`count` seed files are written, named `<index>_<hex>.txt`."""
    names = sorted(path.name for path in corpus.rglob("*"))
    files = [name for name in names if name.endswith(".txt")]
    assert len(files) == COUNT
    assert [name.split("_")[0] for name in files] == [f"{i:06d}" for i in range(COUNT)]


def test_every_file_is_between_2_5_and_7_kb(corpus: Path) -> None:
    """Each file is 2.5 KiB to 7 kB, like the samples."""
    sizes = [path.stat().st_size for path in corpus.rglob("*.txt")]
    assert min(sizes) >= 2560 and max(sizes) <= 7000


def test_about_15_percent_are_unpublished(records: list[Record]) -> None:
    """Roughly 15 % of the files say `published: false`."""
    unpublished = sum(1 for record in records if not record.is_published)
    assert 0.08 <= unpublished / COUNT <= 0.22


def test_every_file_reads_without_errors(corpus: Path) -> None:
    """seedfeeds reads every generated file: no diagnostic of severity "error"."""
    count, diagnostics = check_files(corpus, ("*.txt",))
    assert count == COUNT
    assert [d for d in diagnostics if d.severity == "error"] == []


def test_records_have_the_shape_the_issue_asks_for(records: list[Record]) -> None:
    """Every record has a provider with a domain and a logo, 1-4 pool topics and 0-6 related items."""
    for record in records:
        assert record.provider and record.provider.domain and record.provider.images
        assert 1 <= len(record.topics) <= 4 and set(record.topics) <= set(bench_generate.TOPICS)
        assert 0 <= len(record.related) <= 6
    assert any(record.body.strip() for record in records)
