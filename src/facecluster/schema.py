"""The face database's schema, version by version, and the steps between versions.

Each version's step is the DDL that takes a database of the version before to it; a new
database runs every step in order. A step runs in one transaction with the version bump,
so a crash mid-upgrade leaves the old version. Adding a version: append a step and a test
in tests/test_schema.py that upgrades a database of the version before it.
"""

from __future__ import annotations

import sqlite3

STEPS: dict[int, str] = {
    # 1: photos, faces, embeddings per encoder, persons and the user's corrections.
    1: """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS encoders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    identity TEXT NOT NULL UNIQUE,
    dim INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL,
    error TEXT,
    scanned REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_digest ON photos(digest);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    prob REAL NOT NULL,
    landmarks BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    encoder_id INTEGER NOT NULL REFERENCES encoders(id),
    name TEXT,
    confirmed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    encoder_id INTEGER NOT NULL REFERENCES encoders(id),
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    manual INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (face_id, encoder_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS assignments_person ON assignments(person_id);
CREATE TABLE IF NOT EXISTS rejections (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS embeddings (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    encoder_id INTEGER NOT NULL REFERENCES encoders(id),
    vector BLOB NOT NULL,
    PRIMARY KEY (face_id, encoder_id)
) WITHOUT ROWID;
""",
    # 2: tombstones (a removed photo's faces keep their persons for when it comes back)
    # and generations (the state before each saved grouping or correction: people undo).
    2: """
CREATE TABLE IF NOT EXISTS tombstones (
    digest TEXT NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    encoder_id INTEGER NOT NULL,
    person_id INTEGER NOT NULL,
    manual INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    buried REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_digest ON tombstones(digest);
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    encoder_id INTEGER NOT NULL REFERENCES encoders(id),
    action TEXT NOT NULL,
    created REAL NOT NULL,
    persons TEXT NOT NULL,
    rejections TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS generation_assignments (
    generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    face_id INTEGER NOT NULL,
    person_id INTEGER NOT NULL,
    manual INTEGER NOT NULL,
    PRIMARY KEY (generation_id, face_id)
) WITHOUT ROWID;
""",
    # 3: named face regions read from the photos' XMP (digiKam, Lightroom, immich...):
    # matched to a detected face (face_id), or kept as a named region of the photo (NULL).
    # Boxes in the coordinates of the upright original, like faces.
    3: """
CREATE TABLE IF NOT EXISTS xmp_regions (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    face_id INTEGER REFERENCES faces(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS xmp_regions_photo ON xmp_regions(photo_id);
CREATE INDEX IF NOT EXISTS xmp_regions_face ON xmp_regions(face_id);
""",
    # 4: a log of every change to the vectors (insert, re-embed, delete), kept by triggers,
    # so that find's index file (findindex.py) knows what changed since it was written. Each
    # row has a random tag: an index names the last row it covers by (seq, tag), which a
    # database restored from a backup, or another one, does not have. A database of an
    # earlier version gets one row per encoder, the anchor for its first index.
    4: """
CREATE TABLE IF NOT EXISTS vector_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    face_id INTEGER NOT NULL,
    encoder_id INTEGER NOT NULL,
    tag INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS vector_changes_encoder ON vector_changes(encoder_id, seq);
CREATE TRIGGER IF NOT EXISTS vector_inserted AFTER INSERT ON embeddings BEGIN
    INSERT INTO vector_changes (face_id, encoder_id, tag)
    VALUES (NEW.face_id, NEW.encoder_id, random());
END;
CREATE TRIGGER IF NOT EXISTS vector_updated AFTER UPDATE ON embeddings BEGIN
    INSERT INTO vector_changes (face_id, encoder_id, tag)
    VALUES (NEW.face_id, NEW.encoder_id, random());
END;
CREATE TRIGGER IF NOT EXISTS vector_deleted AFTER DELETE ON embeddings BEGIN
    INSERT INTO vector_changes (face_id, encoder_id, tag)
    VALUES (OLD.face_id, OLD.encoder_id, random());
END;
INSERT INTO vector_changes (face_id, encoder_id, tag)
    SELECT MAX(face_id), encoder_id, random() FROM embeddings GROUP BY encoder_id;
""",
}
VERSION = max(STEPS)


def version_of(db: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for an empty file)."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 1  # the first release wrote its tables before the key


def statements(script: str) -> list[str]:
    """The SQL statements of ``script`` (a trigger's body holds ';' of its own)."""
    out: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out


def upgrade(db: sqlite3.Connection, start: int) -> list[int]:
    """Run the steps after version ``start``, each in its own transaction; returns the
    versions applied. ``db`` must not be in a transaction."""
    done = []
    for version in sorted(v for v in STEPS if v > start):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(STEPS[version]):
                db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        done.append(version)
    return done
