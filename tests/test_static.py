"""`seedfeeds build --out DIR`, the CDN path: atomic, incremental, gzip siblings,
and served by a real nginx on 127.0.0.1 with the README's config."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import feedparser
import pytest

from bench_scripts import load_bench
from conftest import SEEDFEEDS, free_port, http_get, wait_for, write_config, write_stories
from feeds import build_snapshot, load_config
from feeds.catalog import EPOCH
from feeds.snapshot import make_document, plain_body
from feeds.static import SiteWriter

NGINX = "/usr/sbin/nginx"
NGINX_SITE = load_bench("nginx_site")  # the README's sample, as the benchmark runs it too


def build(config: Path, out: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([SEEDFEEDS, "build", "--out", str(out), "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def files(out: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(out)): p.stat() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("archives", [False, True])
def test_build_writes_every_document_and_its_gzip(seed_dir, tmp_path, archives):
    """Every document is written under its URL path with a .gz sibling, byte-identical
    to what is served; archive pages too (seven stories, two entries a page)."""
    if archives:
        seed_dir = tmp_path / "stories"
        write_stories(seed_dir, range(1, 8))
    config_file = write_config(tmp_path / "seedfeeds.toml", seed_dir,
                               feeds_extra="entries_per_feed = 2" if archives else "")
    out = tmp_path / "site"
    build(config_file, out)
    snapshot = build_snapshot(load_config(config_file))
    expected = {"index.html" if path == "/" else path[1:] for path in snapshot.documents}
    assert set(files(out)) == expected | {name + ".gz" for name in expected}
    assert any("/archive/" in path for path in snapshot.documents) == archives
    for path, doc in snapshot.documents.items():
        name = "index.html" if path == "/" else path[1:]
        assert (out / name).read_bytes() == plain_body(doc)
        assert gzip.decompress((out / (name + ".gz")).read_bytes()) == doc.body


def test_a_corrected_url_keeps_its_first_id_in_the_files_too(config_file, seed_dir, tmp_path):
    """A cold build serializes each entry while reading it, before the entry-id
    ledger has had its say. An entry the ledger gives another id (its URL was
    corrected in the same file) is serialized again under that id: the files
    still hold the bytes the builder makes."""
    out = tmp_path / "site"
    build(config_file, out)
    seed = seed_dir / "000_3416384145912650.txt"
    seed.write_text(seed.read_text().replace("/2020/10/27/human-rights", "/2020/10/28/human-rights"))
    build(config_file, out)
    atom = (out / "feeds/all.atom").read_text()
    assert re.search(r"<id>[^<]*/2020/10/27/human-rights[^<]*</id>", atom)  # the first id
    assert re.search(r'<link href="[^"]*/2020/10/28/human-rights', atom)  # the corrected link
    snapshot = build_snapshot(load_config(config_file))  # the same ledger: the same ids
    for path, doc in snapshot.documents.items():
        assert (out / ("index.html" if path == "/" else path[1:])).read_bytes() == doc.body, path


def test_an_empty_seed_folder_builds_empty_feeds(tmp_path):
    """No seed files: nothing to read on two cores, and the site is still written."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    out = tmp_path / "site"
    result = build(write_config(tmp_path / "c.toml", seeds), out)
    assert "(0 entries" in result.stdout
    assert feedparser.parse((out / "feeds/all.atom").read_bytes()).entries == []


def reading_in_parts(monkeypatch, read, part: int = 1) -> None:
    """Make `_build_site` read through a fork even for a handful of seeds, with
    `read` in place of `read_entry`, claiming `part` seeds at a time."""
    from feeds import builder, cold

    monkeypatch.setattr(cold, "PARALLEL_MIN", 1)
    monkeypatch.setattr(cold, "_BATCH", part)
    monkeypatch.setattr(builder, "read_entry", read)


@pytest.mark.parametrize("where", ["the forked reader", "this process"])
def test_a_failing_reader_fails_the_build_and_leaves_no_process(config_file, tmp_path, monkeypatch, where):
    """The seeds are read by this process and a fork: if either fails (an error
    no seed should cause: out of memory, a bug), the build fails and the fork is
    reaped (killed first if this process failed: its work is lost)."""
    from feeds import builder
    from web import cli

    parent, read = os.getpid(), builder.read_entry

    def failing(seed, config):
        if os.getpid() != parent and where == "the forked reader":
            raise MemoryError("no memory left in the fork")
        if os.getpid() == parent:
            if where == "this process":
                raise MemoryError("no memory left in this process")
            time.sleep(0.5)  # leave the fork parts to claim (this process holds two: the next is claimed ahead)
        return read(seed, config)

    reading_in_parts(monkeypatch, failing)
    writer = SiteWriter(tmp_path / "site")
    others = children()  # fixtures' servers may be running
    expected = (MemoryError, "no memory left") if where == "this process" else (RuntimeError, "reading child")
    with pytest.raises(expected[0], match=expected[1]):
        cli._build_site(load_config(config_file), writer)
    writer.abort()
    assert children() == others  # no child left, not even a zombie


def test_the_faster_reader_reads_more_and_every_seed_is_read_once(config_file, seed_dir, tmp_path, monkeypatch):
    """The two reading processes claim parts of the seeds in turn, so one that
    gets less CPU reads fewer; between them, each seed is read once, and the
    files are those of a build that read them all in one process."""
    from feeds import builder
    from web import cli

    parent, read, log = os.getpid(), builder.read_entry, tmp_path / "reads.log"

    def logged(seed, config):
        if os.getpid() == parent:
            time.sleep(0.5)  # a slow reader: the fork claims the other parts meanwhile
        with log.open("a") as file:
            file.write(f"{os.getpid()} {seed.rel}\n")
        return read(seed, config)

    reading_in_parts(monkeypatch, logged)
    writer = SiteWriter(tmp_path / "site")
    cli._build_site(load_config(config_file), writer)
    writer.commit()
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(rel for _, rel in lines) == sorted(p.name for p in seed_dir.glob("*.txt"))  # each once
    by_parent = sum(pid == str(parent) for pid, _ in lines)
    assert by_parent < len(lines) / 2  # the slow one read less
    alone = tmp_path / "alone"
    build(config_file, alone)  # five seeds: read in one process
    assert files_bytes(tmp_path / "site") == files_bytes(alone)


@pytest.mark.parametrize("count", [0, 1, 33, 32_001, 10_000_000])
def test_the_parts_of_any_seed_list_fit_a_pipe_and_cover_it_once(count):
    """However many seeds, their parts' numbers fit in a pipe of one page
    before anyone reads it (the queue is filled before the fork), and the
    parts, claimed one by one, cover every seed once, in order."""
    from feeds.cold import Parts

    with Parts(count) as parts:
        assert len(parts) * 4 <= 4096
        claimed = []
        while (part := parts.claim()) is not None:
            claimed.append(part)
    assert [index for part in claimed for index in part] == list(range(count))


def files_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in files(out)}


def test_rebuild_rewrites_only_changed_files(config_file, seed_dir, tmp_path):
    """A rebuild keeps unchanged files as they were (same inode and mtime); changed files are new."""
    out = tmp_path / "site"
    build(config_file, out)
    before = files(out)
    time.sleep(0.05)
    result = build(config_file, out)
    assert "0 files changed" in result.stdout
    assert {k: (v.st_ino, v.st_mtime_ns) for k, v in files(out).items()} == \
        {k: (v.st_ino, v.st_mtime_ns) for k, v in before.items()}
    seed = seed_dir / "000_3416384145912650.txt"
    seed.write_text(seed.read_text().replace("Human Rights Groups Call", "Rights Groups Urge"))
    build(config_file, out)
    after = files(out)
    changed = {k for k in after if (after[k].st_ino, after[k].st_mtime_ns) != (before[k].st_ino, before[k].st_mtime_ns)}
    assert "feeds/all.atom" in changed and "feeds/all.atom.gz" in changed
    assert "feeds/providers/forbes.com.json" in changed
    assert changed  # and nothing outside the feeds that hold the entry, plus the index
    assert all(k.startswith(("feeds/", "index.html")) for k in changed)


def test_readers_never_see_half_a_build(config_file, tmp_path):
    """While builds run, a reader of DIR always finds a complete site (the swap is one rename)."""
    out = tmp_path / "site"
    build(config_file, out)
    expected = set(files(out))
    seen_broken = []
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            try:  # as rsync does: resolve DIR once, then walk what it pointed to
                tree = out.resolve()
                names = {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}
                if names != expected:
                    seen_broken.append(len(names))
            except OSError as exc:  # the folder being gone is also half a build
                seen_broken.append(str(exc))

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for _ in range(5):
            build(config_file, out)
    finally:
        stop.set()
        reader.join()
    assert seen_broken == []
    assert len(list((tmp_path / ".site.versions").iterdir())) == 2  # the current and the previous version


def test_build_refuses_to_replace_a_real_folder(config_file, tmp_path):
    """An existing folder that is not a seedfeeds build is left alone."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = subprocess.run([SEEDFEEDS, "build", "--out", str(out), "--config", str(config_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not a seedfeeds build" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


@pytest.fixture
def nginx(config_file, tmp_path):
    """nginx serving a fresh build with the README's sample config; stopped by PID."""
    out = tmp_path / "site"
    build(config_file, out)
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_SITE.nginx_conf(out, port, prefix, workers="1", connections=64))
    with (prefix / "stderr.log").open("wb") as log:
        process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix)], stdout=log, stderr=log)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return http_get(url)[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_nginx_serves_the_build_with_media_types_gzip_and_304(nginx, fmt):
    """nginx serves each format with its media type, gzip from the .gz sibling, and 304 on revalidation."""
    status, headers, body = http_get(f"{nginx}/feeds/all.{fmt}")
    assert status == 200
    assert headers["Content-Type"].startswith({"atom": "application/atom+xml", "rss": "application/rss+xml",
                                               "json": "application/feed+json"}[fmt])
    status, gz_headers, gz_body = http_get(f"{nginx}/feeds/all.{fmt}", {"Accept-Encoding": "gzip"})
    assert gz_headers["Content-Encoding"] == "gzip" and gzip.decompress(gz_body) == body
    assert http_get(f"{nginx}/feeds/all.{fmt}", {"If-None-Match": headers["ETag"]})[0] == 304
    assert http_get(f"{nginx}/feeds/all.{fmt}", {"If-Modified-Since": headers["Last-Modified"]})[0] == 304


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feedparser_reads_the_nginx_build_and_revalidates(nginx, fmt):
    """feedparser reads the published entry from nginx, and its second poll gets 304."""
    first = feedparser.parse(f"{nginx}/feeds/all.{fmt}")
    assert first.bozo == 0 and first.status == 200
    assert [e.title for e in first.entries] == [
        "Human Rights Groups Call On The University Of Miami To Ban Facial Recognition"]
    second = feedparser.parse(f"{nginx}/feeds/all.{fmt}", etag=first.etag, modified=first.modified)
    assert second.status == 304


def test_nginx_sample_config_is_in_the_readme():
    """The README ships the nginx config the tests use, with `if_modified_since before`."""
    sample = NGINX_SITE.readme_sample()
    assert "if_modified_since before;" in sample and "gzip_static on;" in sample


def test_a_failing_write_fails_the_build_and_leaves_no_process(config_file, tmp_path, monkeypatch):
    """The documents are written by threads: if a write fails, the build fails with
    its error, every process and thread it started has ended, and OUT keeps the
    previous version."""
    from web import cli

    out = tmp_path / "site"
    build(config_file, out)

    def state() -> dict:
        # Inode, size, mtime and bytes; not the whole stat: the failed build reads the
        # files, and hard-links some, which moves their atime and ctime.
        return {k: (v.st_ino, v.st_size, v.st_mtime_ns, (out / k).read_bytes()) for k, v in files(out).items()}

    before = state()
    write = SiteWriter.write_bodies

    def failing(self, path, body, gzip_body):
        if path.endswith(".atom"):
            raise OSError(f"disk full while writing {path}")
        write(self, path, body, gzip_body)

    monkeypatch.setattr(SiteWriter, "write_bodies", failing)
    writer = SiteWriter(out)
    others, threads = children(), threading.active_count()  # fixtures' servers may be running
    with pytest.raises(OSError, match=r"disk full while writing /feeds/.*\.atom"):
        cli._build_site(load_config(config_file), writer)
    writer.abort()
    assert children() == others  # no child left, not even a zombie
    assert threading.active_count() == threads
    assert state() == before  # the previous version, untouched


def test_this_thread_writes_when_the_writing_thread_is_behind(tmp_path, monkeypatch):
    """The assembling thread queues each document for the writing thread, and when
    `_IN_FLIGHT` wait, gzips and writes the next one itself: with a slow writing
    thread, both write, and every document is written once, as it is served."""
    from feeds import cold
    from web import cli

    seed_dir = tmp_path / "stories"
    write_stories(seed_dir, range(1, 8))
    config_file = write_config(tmp_path / "seedfeeds.toml", seed_dir, feeds_extra="entries_per_feed = 2")
    writers: dict[str, list[str]] = {}
    write = SiteWriter.write_bodies

    def recorded(self, path, body, gzip_body):
        name = threading.current_thread().name
        if name != "MainThread":
            time.sleep(0.01)  # the writing thread falls behind
        writers.setdefault(name, []).append(path)
        write(self, path, body, gzip_body)

    monkeypatch.setattr(SiteWriter, "write_bodies", recorded)
    monkeypatch.setattr(cold, "_IN_FLIGHT", 2)
    out = tmp_path / "site"
    writer = SiteWriter(out)
    cli._build_site(load_config(config_file), writer)
    writer.commit()
    assert set(writers) == {"MainThread", "seedfeeds-writer"}
    assert any(path.startswith("/feeds/") for path in writers["MainThread"])  # not only the pages written last
    written = [path for paths in writers.values() for path in paths]
    assert len(written) == len(set(written))
    snapshot = build_snapshot(load_config(config_file))
    assert set(written) == set(snapshot.documents)
    for path, doc in snapshot.documents.items():
        name = "index.html" if path == "/" else path[1:]
        assert (out / name).read_bytes() == plain_body(doc)
        assert gzip.decompress((out / (name + ".gz")).read_bytes()) == doc.body


def test_a_write_failing_in_the_assembling_thread_fails_the_build_and_leaves_no_thread(config_file, tmp_path,
                                                                                       monkeypatch):
    """When the assembling thread writes a document itself and that fails, the
    build fails with its error, and the writing thread has ended."""
    from feeds import cold
    from web import cli

    write = SiteWriter.write_bodies

    def failing_here(self, path, body, gzip_body):
        if threading.current_thread() is threading.main_thread():
            raise OSError(f"disk full while writing {path}")
        time.sleep(0.01)
        write(self, path, body, gzip_body)

    monkeypatch.setattr(SiteWriter, "write_bodies", failing_here)
    monkeypatch.setattr(cold, "_IN_FLIGHT", 1)
    writer = SiteWriter(tmp_path / "site")
    with pytest.raises(OSError, match="disk full while writing /feeds/"):
        cli._build_site(load_config(config_file), writer)
    writer.abort()
    # The writing thread, by name: other tests' fixtures may start or end threads meanwhile.
    assert "seedfeeds-writer" not in [t.name for t in threading.enumerate()]


def children() -> set[int]:
    """This process's children, zombies included (listed until reaped)."""
    return set(load_bench("procs").children(os.getpid()))


@pytest.mark.parametrize("path", ["/../escaped.atom", "/feeds/../../escaped.atom", "/feeds/a/../../../escaped.atom"])
def test_a_path_leading_out_of_the_folder_is_refused(tmp_path, path):
    """Document paths are checked to stay inside the version folder being written."""
    writer = SiteWriter(tmp_path / "site")
    with pytest.raises(ValueError, match="outside the output folder"):
        writer.write(path, make_document(b"<feed/>", "application/atom+xml", EPOCH))
    writer.abort()
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*"))


def test_a_path_written_twice_never_writes_through_to_the_served_version(tmp_path):
    """An unchanged file is a hard link to the version being served: writing the
    same path again in the new version must fail, not change the live file."""
    site = tmp_path / "site"
    first = SiteWriter(site)
    first.write("/feeds/all.atom", make_document(b"<feed>served</feed>", "application/atom+xml", EPOCH))
    first.commit()
    served = (site / "feeds/all.atom").read_bytes(), (site / "feeds/all.atom.gz").read_bytes()

    second = SiteWriter(site)
    second.write("/feeds/all.atom", make_document(b"<feed>served</feed>", "application/atom+xml", EPOCH))
    assert second.kept == 2  # both files hard-linked from the served version
    with pytest.raises(FileExistsError):
        second.write("/feeds/all.atom", make_document(b"<feed>other</feed>", "application/atom+xml", EPOCH))
    second.abort()
    assert ((site / "feeds/all.atom").read_bytes(), (site / "feeds/all.atom.gz").read_bytes()) == served


def in_page_cache(path: Path) -> bool:
    """Whether the file's pages are all in memory, as util-linux's fincore (mincore(2))
    sees them: looking does not bring them in, as a read would."""
    resident = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                              capture_output=True, text=True, check=True).stdout
    return int(resident) >= path.stat().st_size


def test_prefetching_brings_seed_files_into_memory_without_waiting(tmp_path):
    """Seed files not read for a while are not in memory: a build asks the kernel
    for files it will read soon (a cold build's reader, those of its next part),
    and they arrive while it parses others. A file that vanished or became a FIFO
    since the scan is skipped without waiting (its reader reports it)."""
    from feeds.records import SeedFile, prefetch

    paths = []
    for n in range(40):
        path = tmp_path / f"{n:02d}.txt"
        with path.open("wb") as file:
            file.write(b"---\ntitle: x\n---\n" + b"body " * 2000)
            file.flush()
            os.fsync(file.fileno())
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages: dropped from memory
        os.close(fd)
        paths.append(path)
    assert not any(in_page_cache(path) for path in paths)  # the premise: these reads would wait
    os.mkfifo(tmp_path / "fifo.txt")
    seeds = [SeedFile(p.name, str(p), 0, 0, 0, 0) for p in [*paths, tmp_path / "fifo.txt", tmp_path / "gone.txt"]]
    started = time.monotonic()
    prefetch(seeds)
    assert time.monotonic() - started < 5  # neither the FIFO nor the missing file held it up
    assert wait_for(lambda: all(in_page_cache(path) for path in paths), timeout=10)
