"""Qt-free gallery: SQLite (source of truth) + FAISS (derived), enrolment and search."""
