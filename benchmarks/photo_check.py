"""What checking a stored photo's SHA-256 costs when it is shown: hashing against decoding.

    python benchmarks/photo_check.py [PHOTO ...]     (default: the test fixtures, and the
                                                      shared faces if they are beside the checkout)

Prints, per photo, the median of N runs of: reading the bytes, SHA-256 of the bytes, and the
full verified load (read, hash, decode) that thumbnails, Compare and reports use.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workstation.gallery.photos import load_verified_photo  # noqa: E402
from workstation.vision.images import load_image  # noqa: E402

RUNS = 15


def median_ms(work) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(paths: list[Path]) -> None:
    print(
        f"{'photo':<28} {'bytes':>9} {'read ms':>8} {'sha256 ms':>9} {'decode ms':>9} "
        f"{'verified load ms':>16}"
    )
    for path in paths:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        read = median_ms(path.read_bytes)
        hashing = median_ms(lambda data=data: hashlib.sha256(data).hexdigest())
        plain = median_ms(lambda path=path: load_image(path))
        verified = median_ms(lambda path=path, digest=digest: load_verified_photo(path, digest, 1))
        print(
            f"{path.name[:28]:<28} {len(data):>9,} {read:>8.2f} {hashing:>9.2f} "
            f"{plain - read - hashing:>9.2f} {verified:>16.2f}"
        )


if __name__ == "__main__":
    given = [Path(p) for p in sys.argv[1:]]
    if not given:
        given = sorted((REPO / "tests" / "fixtures").glob("*.jpg"))
    main(given)
