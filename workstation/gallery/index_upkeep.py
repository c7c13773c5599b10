"""The gallery's vector index kept in step with its database: part of `Gallery`.

The database is the source of truth; the index (FAISS files in the folder, or an agency's Milvus
collection) is derived from it: loaded once, caught up or rebuilt when it is behind, missing,
stale or damaged, and told of the faces each committed change added or removed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from workstation.gallery.database import Database
from workstation.gallery.opening import INDEX_FILES_GLOB
from workstation.gallery.photo_copies import fsync_folders

if TYPE_CHECKING:
    from workstation.gallery.index import VectorIndex
    from workstation.gallery.milvus import MilvusVectors
    from workstation.gallery.store import Gallery

log = logging.getLogger(__name__)


class IndexUpkeep:
    """The vector index of a gallery (a part of `Gallery`)."""

    if TYPE_CHECKING:
        _conn: Database
        _index: Any
        folder: Path
        vectors: MilvusVectors | None

        @property
        def generation(self) -> int: ...

        @property
        def model_id(self) -> str | None: ...

        @property
        def model_dim(self) -> int | None: ...

        def face_count(self) -> int: ...

        @property
        def db_path(self) -> Path: ...

    @property
    def _gallery(self) -> Gallery:
        """This object as the whole gallery (what the index builders and Milvus are given)."""
        return cast("Gallery", self)

    def drop_index_files(self) -> None:
        """Remove the vector index's files (derived, rebuilt from the database on next use):
        used when faces were removed while the saved index was not in step to remove them."""
        self._index = None
        for path in self.folder.glob(INDEX_FILES_GLOB):
            if path.is_file():
                path.unlink(missing_ok=True)
        fsync_folders([self.db_path])

    def index(self, on_message: Any = None) -> VectorIndex:
        """The vector index, loaded once and rebuilt from SQLite if missing, stale or damaged."""
        from workstation.gallery.index_build import open_index

        if self.vectors is not None:
            self._index = self.vectors.index(self._gallery, self._index, on_message)
            return self._index
        if self._index is None or self._index.generation != self.generation:
            self._index = open_index(self._gallery, on_message=on_message)
        return self._index

    def use_index(self, index: Any) -> None:
        """Keep `index` as this gallery's loaded index (after building or rebuilding it)."""
        self._index = index

    def forget_index(self) -> None:
        self._index = None

    def save_index(self) -> None:
        """Write the loaded index's changes to its files (no-op when none is loaded)."""
        index = self._index
        if self.vectors is None and index is not None and (index.count or index.path.exists()):
            index.save()

    def _sync_index(
        self,
        before: int,
        after: int,
        added: list[tuple[np.ndarray, np.ndarray]],
        removed: list[int],
        rebuild: bool,
        save: bool,
    ) -> None:
        """After a unit of work committed: apply its face changes to the index, if the index
        (in memory, else on disk) was in step with the gallery before it. Otherwise leave it
        (removed faces are still overwritten in its files at once): `index()` catches a behind
        index up, or rebuilds it, on its next use.

        An agency gallery's collection was written before the commit (`_before_commit`)."""
        if self.vectors is not None:
            self._index = None if rebuild else self._index
            return
        index = None if rebuild else self._index
        if index is not None and index.generation != before:
            index = None
        try:
            if index is None and not rebuild:
                index = self._index_at(before, added, removed)
            if index is None:
                self._index = None
                if removed:
                    from workstation.gallery.index import remove_from_saved

                    if not remove_from_saved(self.folder, removed):
                        # Files that cannot be read to overwrite the faces in place (damaged)
                        # may still hold them: they go now (rebuilt from the database later).
                        self.drop_index_files()
                return
            if removed:
                index.remove(removed)
            for ids, vectors in added:
                index.add(ids, vectors)
            if index.model_id is None:
                index.model_id = self.model_id
            index.generation = after
            self._index = index
            if save:
                index.save()
        except OSError:
            # The act is committed; the index is derived: the next use catches it up from the
            # database or rebuilds it (its manifest no longer matches), and says so.
            self._index = None
            if removed:  # the files may still hold the removed vectors: they go now
                try:
                    self.drop_index_files()
                except OSError as exc:
                    log.error("%s: index files holding deleted faces: %s", self.folder, exc)

    def _before_commit(
        self, added: list[tuple[np.ndarray, np.ndarray]], removed: list[int]
    ) -> None:
        """A change that added or removed faces is about to commit, the write lock held: an
        agency gallery's vectors are written to its shared collection now (deleted faces leave
        searches in the act itself; an interrupted write is repaired on the next open)."""
        if self.vectors is not None:
            self.vectors.before_commit(self._gallery, added, removed)

    def face_ids(self) -> np.ndarray:
        """Every face id, ascending (what a derived vector store must hold)."""
        rows = self._conn.execute("SELECT id FROM faces ORDER BY id").fetchall()
        return np.asarray([int(r[0]) for r in rows], dtype=np.int64)

    def newest_face_id(self) -> int | None:
        row = self._conn.execute("SELECT MAX(id) FROM faces").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _index_at(
        self, generation: int, added: list[tuple[np.ndarray, np.ndarray]], removed: list[int]
    ) -> VectorIndex | None:
        """The saved index if it shows the gallery at `generation`, or a new empty one for a
        gallery that had no faces then; None otherwise."""
        from workstation.gallery.index import MANIFEST_NAME, VectorIndex

        if (self.folder / MANIFEST_NAME).exists():
            loaded = VectorIndex.load(self.folder, expect_model=self.model_id)
            if (
                isinstance(loaded, VectorIndex)
                and loaded.generation == generation
                and loaded.model_id in (None, self.model_id)
            ):
                return loaded
            return None
        added_count = sum(len(ids) for ids, _ in added)
        if self.face_count() - added_count + len(removed) == 0 and self.model_dim:
            return VectorIndex(self.folder, self.model_dim, generation, self.model_id)
        return None
