"""The README's sample nginx site as a runnable nginx.conf: how the benchmark
serves a static build, and what tests/test_static.py checks with a real nginx.

No imports from the rest of bench/, so the tests can load this file alone.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_sample() -> str:
    """The README's ```nginx block: the server block it tells operators to use."""
    return re.search(r"```nginx\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)


def nginx_conf(root: Path, port: int, prefix: Path, workers: str = "auto", connections: int = 1024) -> str:
    """The README's sample serving `root` on 127.0.0.1:`port`, in the foreground, inside
    an http block that keeps every path nginx writes under `prefix`."""
    site = readme_sample().replace("/srv/seedfeeds/site", str(root)).replace("listen 8080", f"listen 127.0.0.1:{port}")
    return f"""daemon off;
user root;
worker_processes {workers};
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""
