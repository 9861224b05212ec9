"""The static build: a snapshot written as files any web server can serve.

    OUT/index.html  OUT/feeds/all.atom  OUT/feeds/topics/ai.rss  ...

Paths come from the snapshot (slugs and domains are single safe path
segments); each is checked to stay inside OUT before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .snapshot import Snapshot


def site_files(snapshot: Snapshot) -> dict[str, bytes]:
    """Relative file path -> bytes, for every document of the snapshot."""
    files = {}
    for path, doc in snapshot.documents.items():
        rel = "index.html" if path == "/" else path.lstrip("/")
        files[rel] = doc.body
    return files


def write_site(snapshot: Snapshot, out: Path) -> int:
    """Write every document under `out`, replacing what was there; returns the file count.

    The new tree is written beside `out` and renamed into place.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = site_files(snapshot)
        for rel, body in files.items():
            target = (staging / rel).resolve()
            if not target.is_relative_to(staging):
                raise ValueError(f"refusing to write outside the output folder: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        os.chmod(staging, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "site")
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(files)
