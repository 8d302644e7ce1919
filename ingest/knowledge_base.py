"""Wiring: builds the store, embedder, lexical encoder, indexer and searcher from one `Settings`.

Heavy resources (model weights, jieba's dictionary, the index handle) load in `warm_up()`, never at import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.documents import load_corpus
from ingest.indexer import Indexer, IngestReport, Progress
from ingest.locking import writer_lock
from ingest.settling import PublishStorageError, recover, unsettled
from kb_service.db import migrate
from kb_service.db.engine import DB_ERRORS, Database
from kb_service.db.logbook import Logbook, has_pending_versions
from kb_service.db.versions import replica_name
from kb_service.embedding import embedders
from kb_service.embedding.embedders import USE_DIM, Embedder
from kb_service.errors import ConfigError, KbError, NotFoundError, first_line
from kb_service.search.searcher import SearchConfig, Searcher
from kb_service.settings import Settings
from kb_service.store.base import VectorStore
from kb_service.store.layout import IndexLayout
from kb_service.text import glossary
from kb_service.text.lexical import LexicalEncoder

log = logging.getLogger(__name__)


def create_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from kb_service.store.server import ServerStore

        if settings.qdrant_url == ":memory:":
            client = QdrantClient(location=":memory:")
        elif settings.qdrant_url.startswith(("http://", "https://")):
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key or None, timeout=30)
        else:
            raise ConfigError("KB_QDRANT_URL must start with http:// or https:// (or be :memory: in tests)")
        return ServerStore(client, settings.qdrant_collection, layout=index_layout(settings))
    from kb_service.store.edge import EdgeStore

    return EdgeStore(settings.data_dir / "index", layout=index_layout(settings))


def index_layout(settings: Settings) -> IndexLayout:
    return IndexLayout(
        quantization=settings.index_quantization,
        vectors_on_disk=settings.index_vectors_on_disk,
        aux_on_disk=settings.index_aux_on_disk,
        rescore=settings.index_rescore,
        lexical_datatype=settings.index_lexical_datatype,
        originals=settings.index_originals,
        vectors_file=settings.index_vectors_file,
        sentence_rows=settings.index_sentence_rows or None,
        dot=settings.embed_dimensions != USE_DIM,  # shortened vectors keep their length: their dot is the cosine
    )


@dataclass
class KnowledgeBase:
    settings: Settings
    store: VectorStore
    embedder: Embedder
    lexical: LexicalEncoder
    indexer: Indexer
    searcher: Searcher
    database: Database  # the service database: versions, query log, ... (SQLite under the data dir, or PostgreSQL)

    @classmethod
    def from_settings(
        cls, settings: Settings, config: SearchConfig | None = None, embedder: Embedder | None = None
    ) -> KnowledgeBase:
        store = create_store(settings)
        config = replace(
            config or SearchConfig(), urgent_categories=settings.urgent_category_set, rerank=settings.search_rerank
        )
        emb = embedder or embedders.create(settings)
        lexical = LexicalEncoder(glossary.load(settings.sops_dir))
        database = Database.from_settings(settings)
        indexer = Indexer(settings.data_dir, store, emb, lexical, lock=writer_lock(settings.data_dir, database))
        return cls(
            settings=settings,
            store=store,
            embedder=emb,
            lexical=lexical,
            indexer=indexer,
            # Refuse to serve an index built by another embedder: its vectors mean nothing to this one.
            searcher=Searcher(store, emb, lexical, config, validate=indexer.check_compatible),
            database=database,
        )

    @property
    def replica(self) -> str:
        """The id of this data directory among replicas sharing a PostgreSQL database ('' with SQLite: one data
        directory holds everything)."""
        return replica_name(self.settings.data_dir) if self.database.shared else ""

    def logbook(self) -> Logbook:
        """A handle on the service database for this replica (the caller closes it)."""
        return Logbook(self.database, replica=self.replica)

    def warm_up(self) -> None:
        try:
            self.recover_publishes()
        except PublishStorageError as exc:  # searches still work; the next publish or ingest retries and refuses
            log.error("%s", first_line(exc))
        self.embedder.warm_up()
        self.lexical.warm_up()
        if self.searcher.refresh(force=True) is not None:
            self.searcher.search("预热 天花板漏水", top_k=1)  # first-query costs (pinyin tables, shard pages)
        elif self.searcher.fault is not None and self.store.published() is not None:
            # The published index cannot be used (damaged, or built by another embedder). The searcher keeps
            # following the pointer: a server that goes on after this error serves once a good one is published.
            raise self.searcher.fault

    def unreadable(self) -> KbError | None:
        """Why the published index cannot be used now, read fresh (None: it can, or nothing is published): a
        publish does not build on it, as every SOP would look new or deleted."""
        if self.searcher.refresh(force=True) is None and self.store.published() is not None:
            return self.searcher.fault
        return None

    def unknown(self, sop_id: str) -> KbError:
        """Why a SOP the index does not hold cannot be read: unknown, or the index is unreadable (a damaged one said
        404 for every SOP's source, as if deleted: an operator's trial)."""
        return self.unreadable() or NotFoundError(f"没有 id 为 {sop_id} 的 SOP / unknown SOP {sop_id}")

    def ingest(
        self,
        sops_dir: Path | None = None,
        *,
        rebuild: bool = False,
        progress: Progress | None = None,
        allow_empty: bool = False,
    ) -> IngestReport:
        """Make the index match the SOP folder. A folder that does not exist, or holds no SOP file while the index
        holds documents (a mistyped KB_SOPS_DIR, a share not mounted yet), is refused and the index is kept;
        `allow_empty` empties the index on purpose."""
        root = sops_dir or self.settings.sops_dir
        if not root.is_dir():
            raise ConfigError(
                f"SOP 文件夹不存在：{root}。索引保持不变；请检查 KB_SOPS_DIR / the SOP folder {root} does not exist; "
                "the index is kept"
            )
        # The folder is read under the writer lock, after interrupted publishes are settled: a publish finishing
        # between reading it and indexing it would otherwise be reverted.
        doing = (
            f"重建索引（全部重新嵌入）{root} / rebuilding from {root}"
            if rebuild
            else f"同步 SOP 文件夹 {root} / ingesting {root}"
        )
        with self.indexer.lock.hold(doing):
            self.recover_publishes()
            corpus = load_corpus([root], root=root)
            # The model and jieba load on first use: an ingest with nothing to re-embed never pays for them.
            report = self.indexer.sync(corpus, rebuild=rebuild, progress=progress, allow_empty=allow_empty)
        self.searcher.refresh(force=True)
        return report

    def recover_publishes(self) -> list[str]:
        """Complete or undo publishes that a crash interrupted (see publishing.py); one line per version settled.

        Raises `PublishStorageError` when one cannot be settled: indexing the folder then could revert it."""
        try:
            # The usual case reads the database without the lock and without writing (readers may run read-only).
            pending = self.database.path
            if pending is None:  # PostgreSQL: read with its schema brought up to date (SQLite: by the Logbook)
                migrate.upgrade(self.database)
            if not has_pending_versions(pending or self.database, self.replica):
                return []
            with self.indexer.lock.hold("补完中断的发布 / settling interrupted publishes"):
                logbook = self.logbook()
                try:
                    return recover(self.store, self.settings.sops_dir, logbook)
                finally:
                    logbook.close()
        except (OSError, *DB_ERRORS) as exc:
            raise unsettled(exc) from exc

    def close(self) -> None:
        self.store.close()
