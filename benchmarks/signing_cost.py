"""What signing every audit event and hashing every row it wrote costs (issue 11).

    python benchmarks/signing_cost.py [--events N] [--photos DIR] [--limit N]

Runs in one process, side by side (the machine is shared, so only same-run ratios mean much):

1. audit events per second through the gallery (`transaction()` + `audit()`, one small act per
   commit, witness appended): signed as the program does, and the baseline with signing and row
   hashing switched off in this process only (the hash chain kept), as before issue 11;
2. enrolment photos per second (real detection, alignment and embedding) with and without
   signing and row hashing, on the same photos into fresh galleries.

Also prints the raw Ed25519 signatures per second on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workstation.audit.actions import AuditAction  # noqa: E402
from workstation.audit.signing import SigningKey  # noqa: E402
from workstation.gallery import change as change_module  # noqa: E402
from workstation.gallery.store import Gallery  # noqa: E402
from workstation.identity import Examiner  # noqa: E402


@contextlib.contextmanager
def unsigned() -> Iterator[None]:
    """The baseline: events hashed and chained, but neither signed nor carrying row hashes, and
    no witness appended (what the program did before issue 11)."""
    sign, entries, witness = (
        SigningKey.sign,
        change_module.GalleryChange._row_entries,
        Gallery.witness_head,
    )
    SigningKey.sign = lambda self, message: ""
    change_module.GalleryChange._row_entries = lambda self: []
    Gallery.witness_head = lambda self: None
    try:
        yield
    finally:
        SigningKey.sign = sign
        change_module.GalleryChange._row_entries = entries
        Gallery.witness_head = witness


def events_per_second(folder: Path, examiner: Examiner, count: int) -> float:
    with Gallery(folder, examiner=examiner) as gallery:
        start = time.perf_counter()
        for n in range(count):
            with gallery.transaction():
                gallery.audit(AuditAction.EXPORT, {"n": n}, case_id="B-1", purpose="benchmark")
        return count / (time.perf_counter() - start)


def photos_per_second(folder: Path, examiner: Examiner, photos: list[Path]) -> float:
    from workstation.gallery.enroll import enroll, items_for_subject
    from workstation.progress import drain
    from workstation.vision.registry import create_engine

    engine = create_engine()
    items = [item for n, p in enumerate(photos) for item in items_for_subject(f"S{n}", [p])]
    with Gallery(folder, examiner=examiner) as gallery:
        start = time.perf_counter()
        report = drain(enroll(gallery, engine, items, workers=1))
        elapsed = time.perf_counter() - start
    return report.enrolled / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--photos", type=Path, default=REPO / "tests" / "fixtures")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    key = SigningKey.generate()
    start, n = time.perf_counter(), 2000
    for i in range(n):
        key.sign(i.to_bytes(8, "big"))
    print(f"Ed25519 signatures/s (one core): {n / (time.perf_counter() - start):,.0f}")
    photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in {".jpg", ".png"})
    photos = photos[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        examiner = Examiner("bench", root / "profile")
        rows = []
        with unsigned():
            before = events_per_second(root / "e0", examiner, args.events)
        after = events_per_second(root / "e1", examiner, args.events)
        rows.append(("audit events/s", before, after))
        if photos:
            with unsigned():
                before = photos_per_second(root / "p0", examiner, photos)
            after = photos_per_second(root / "p1", examiner, photos)
            rows.append((f"enrolment photos/s ({len(photos)} photos)", before, after))
    print(f"{'':<34} {'before (unsigned)':>18} {'after (signed)':>15} {'after/before':>13}")
    for name, before, after in rows:
        print(f"{name:<34} {before:>18.1f} {after:>15.1f} {after / before:>13.2f}")


if __name__ == "__main__":
    main()
