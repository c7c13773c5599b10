"""Real servers for the agency gallery's tests: PostgreSQL 16 from the `pgserver` wheel and
Milvus Lite, one of each per test session; each test gets a fresh database (copied from a
template that `init_agency` migrated once) and its own Milvus collection.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

TEMPLATE = "workstation_template"


def agency_available() -> str | None:
    """None when the agency's test servers can run here, else why not."""
    try:
        import pgserver  # noqa: F401
        import psycopg  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"agency gallery tests need pgserver, psycopg and pymilvus ({exc})"
    return None


class AgencyServers:
    """One PostgreSQL server and one Milvus Lite file for the session."""

    def __init__(self) -> None:
        import pgserver
        import psycopg

        # Short, fixed-depth path: the server's socket lives in its data folder (107 bytes max).
        self.root = Path(tempfile.mkdtemp(prefix="ws-agency-"))
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
            warnings.simplefilter("ignore")
            self.server = pgserver.get_server(self.root / "pg", cleanup_mode="stop")
        self.socket_dir = str(self.root / "pg")
        self.milvus_path = str(self.root / "vectors.db")
        self._names = itertools.count(1)
        self._psycopg = psycopg
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        from workstation.gallery.agency import init_agency

        init_agency(
            self.root / "template-gallery",
            self.url(TEMPLATE),
            self.milvus_path,
            collection="template",
        )

    def admin(self, dbname: str = "postgres") -> Any:
        """A superuser connection (the DBA), autocommit."""
        return self._psycopg.connect(self.url(dbname), autocommit=True)

    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@/{dbname}?host={self.socket_dir}"

    def new_gallery(
        self, folder: Path, collection: str | None = None, vectors_uri: str | None = None
    ) -> Path:
        """A fresh agency gallery: its own database (from the template) and collection, and its
        gallery.toml in `folder`. `vectors_uri`: a Milvus server several processes share
        (`MilvusServer`), instead of this process's Milvus Lite file."""
        from workstation.gallery.agency import AgencyConfig, read_config, write_config
        from workstation.gallery.milvus import MilvusSettings

        number = next(self._names)
        dbname = f"g{os.getpid()}_{number}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {dbname} TEMPLATE {TEMPLATE}")
        template = read_config(self.root / "template-gallery")
        vectors = MilvusSettings(
            uri=vectors_uri or self.milvus_path,
            collection=collection or f"faces_{os.getpid()}_{number}",
            index_type=template.vectors.index_type,
        )
        write_config(folder, AgencyConfig(self.url(dbname), vectors, template.role_prefix))
        return folder

    def drop_gallery(self, folder: Path) -> None:
        """Drop a test gallery's database and collection (after its connections closed)."""
        from workstation.gallery.agency import read_config
        from workstation.gallery.milvus import milvus_client

        config = read_config(folder)
        dbname = config.database_url.split("?", 1)[0].rsplit("/", 1)[-1]
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        client = milvus_client(config.vectors.uri)
        if client.has_collection(config.vectors.collection):
            client.drop_collection(config.vectors.collection)

    def close(self) -> None:
        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class MilvusServer:
    """Milvus Lite as a server (`milvus-lite server`): what several processes share, as the
    workstations of an agency share a Milvus standalone or cluster."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        launcher = Path(sys.executable).with_name("milvus-lite")
        self.process = subprocess.Popen(
            [
                str(launcher),
                "server",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited: {self.process.stderr.read()!r}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("milvus-lite server did not start within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
