"""CFP (Celebrities in Frontal-Profile) measurements for benchmarks/accuracy.py --cfp.

See accuracy.py's docstring for what is printed. Research use only: nothing derived from the
photos is written anywhere but the cache under /work/cache (never committed).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from faceset import VIEWS, config_vectors, embed_member_views, merge_parts

from workstation.vision.images import load_image
from workstation.vision.registry import configuration, create_engine

CACHE = Path("/work/cache/recognition")
CONFIGS = ("fast", "fast-mirror", "dlib", "fused-noflip", "accurate")
LABELS = {
    "fast": "SFace (single model)",
    "fast-mirror": "SFace + mirror",
    "dlib": "dlib ResNet alone",
    "fused-noflip": "SFace + dlib fused",
    "accurate": "fused, both mirrored",
}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def photo_list(root: Path) -> list[str]:
    """The identification photos first (they are needed whole), then every other photo."""
    first: list[str] = []
    for name in ("gallery.csv", "probes_frontal.csv", "probes_profile.csv"):
        first += [r["image"] for r in _rows(root / name)]
    rest = sorted({str(p) for p in root.glob("images/*/*/*.jpg")} - set(first))
    return first + rest


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (accept score > t) with the highest accuracy on these pairs."""
    order = np.argsort(scores)
    ordered, labels = scores[order], same[order]
    # Accepting everything above position i: wrong = genuine at or below i + impostors above i.
    genuine_below = np.concatenate([[0], np.cumsum(labels)])
    impostor_above = (~labels).sum() - np.concatenate([[0], np.cumsum(~labels)])
    errors = genuine_below + impostor_above
    i = int(np.argmin(errors))
    if i == 0:
        return float(ordered[0]) - 1e-6
    if i == len(ordered):
        return float(ordered[-1])
    return float((ordered[i - 1] + ordered[i]) / 2)


def verification(
    vectors: np.ndarray, ok: np.ndarray, index: dict[str, int], pairs: list[dict[str, str]]
) -> dict[str, float]:
    from accuracy import tar_at_far

    if not pairs:
        nan = float("nan")
        return {"acc": nan, "sd": nan, "tar": nan, "folds": 0, "pairs": 0, "no_face_pairs": 0}
    a = np.array([index[r["image_a"]] for r in pairs])
    b = np.array([index[r["image_b"]] for r in pairs])
    same = np.array([r["same"] == "1" for r in pairs])
    folds = np.array([int(r["fold"]) for r in pairs])
    # A pair with a photo in which no face was found is rejected (counts against a mated pair).
    scores = np.where(ok[a] & ok[b], np.einsum("ij,ij->i", vectors[a], vectors[b]), -2.0)
    accuracies = []
    for fold in sorted(set(folds)):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(scores[train], same[train])
        accuracies.append(float(((scores[test] > threshold) == same[test]).mean()))
    tar = tar_at_far(scores[same], scores[~same], 0.001)
    return {
        "acc": statistics.mean(accuracies),
        "sd": statistics.pstdev(accuracies),
        "tar": tar[0] if tar else float("nan"),
        "folds": len(accuracies),
        "pairs": len(pairs),
        "no_face_pairs": int((~(ok[a] & ok[b])).sum()),
    }


def identification(
    vectors: np.ndarray, ok: np.ndarray, index: dict[str, int], root: Path, probes: str
) -> dict[str, float]:
    gallery = [r for r in _rows(root / "gallery.csv") if ok[index[r["image"]]]]
    matrix = vectors[[index[r["image"]] for r in gallery]]
    subjects = np.array([r["subject_id"] for r in gallery])
    ranks = []
    for row in _rows(root / probes):
        i = index[row["image"]]
        if not ok[i] or row["subject_id"] not in subjects:
            ranks.append(10**9)  # no face in the probe or in its gallery photo: a miss
            continue
        sims = matrix @ vectors[i]
        true = sims[subjects == row["subject_id"]].max()
        ranks.append(int((sims > true).sum()) + 1)
    r = np.array(ranks)
    return {"rank1": float((r <= 1).mean()), "rank20": float((r <= 20).mean()), "n": len(r)}


def speed(root: Path, key: str, photos: int) -> dict[str, float]:
    """Enrolment photos/s (the product's enrol(), 2 workers) and probe-to-candidates ms."""
    from workstation.gallery.enroll import EnrollItem, enroll
    from workstation.gallery.search import search_image
    from workstation.gallery.store import Gallery
    from workstation.progress import drain

    engine = create_engine(key)
    rows = _rows(root / "gallery.csv")[:photos]
    items = [EnrollItem(r["subject_id"], Path(r["image"]), r["image"]) for r in rows]
    engine.analyze(load_image(items[0].image).bgr)  # warm up
    folder = Path(tempfile.mkdtemp(prefix="ws-cfp-speed-"))
    try:
        with Gallery(folder / "gallery", user="bench") as gallery:
            started = time.perf_counter()
            drain(enroll(gallery, engine, items, workers=2, batch_size=16))
            enrol_s = time.perf_counter() - started
            times = []
            for row in _rows(root / "probes_frontal.csv")[: min(20, photos)]:
                image = load_image(Path(row["image"]))
                started = time.perf_counter()
                try:
                    search_image(gallery, engine, image, "BENCH", "benchmark")
                except Exception:  # a probe without a face: not a search
                    continue
                times.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"enrol_per_s": len(items) / enrol_s, "search_ms": 1000 * statistics.median(times)}


def check_composition(
    paths: list[str], views: dict[str, np.ndarray], configs: tuple[str, ...], count: int = 3
) -> None:
    """The composed vectors must be what the product computes for the same photo."""
    for key in configs:
        engine = create_engine(key)
        composed = config_vectors(views, key)
        worst = 1.0
        for i in np.flatnonzero(views["ok"])[:count]:
            faces = engine.analyze(load_image(Path(paths[i])).bgr)
            worst = min(worst, float(faces[0].embedding @ composed[i]))
        print(f"  {key:<13} composed vs create_engine({key!r}): lowest cosine {worst:.6f}")
        if worst < 0.9999:
            raise SystemExit(f"composition of {key} differs from the product's engine")


SFACE_CONFIGS = ("fast", "fast-mirror")


def run_cfp(args: argparse.Namespace) -> None:
    root: Path = args.cfp
    paths = photo_list(root)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / "cfp_views.npz"
    members: tuple[str, ...] = ("sface", "dlib")
    configs = CONFIGS
    if args.sface_only:
        members, configs = ("sface",), SFACE_CONFIGS
        full, cache = cache, CACHE / "cfp_views_sface.npz"
        if full.exists() and not cache.exists():
            shutil.copy(full, cache)  # photos with all four views already computed
    if args.worker is not None:
        embed_member_views(paths, cache, args.worker, args.workers, members=members)
        return
    merge_parts(cache, paths, args.workers)
    folds = set(range(1, args.folds + 1))
    ff = [r for r in _rows(root / "pairs_ff.csv") if int(r["fold"]) in folds]
    fp = [r for r in _rows(root / "pairs_fp.csv") if int(r["fold"]) in folds]
    needed_set = set(paths[:1500]) | {r[k] for r in ff + fp for k in ("image_a", "image_b")}
    if args.cached_only:
        # Only what the embedding workers have finished: whole folds, so every fold is complete.
        have = set(str(x) for x in np.load(cache, allow_pickle=False)["paths"])
        if not set(paths[:1500]) <= have:
            raise SystemExit("the identification photos are not all embedded yet")

        def complete(rows: list[dict[str, str]]) -> set[int]:
            folds_seen = {int(r["fold"]) for r in rows}
            return {
                f
                for f in folds_seen
                if all(
                    r["image_a"] in have and r["image_b"] in have
                    for r in rows
                    if int(r["fold"]) == f
                )
            }

        done = complete(ff) & complete(fp)
        ff = [r for r in ff if int(r["fold"]) in done]
        fp = [r for r in fp if int(r["fold"]) in done]
        needed_set &= have
        print(f"--cached-only: complete folds {sorted(done)}")
    needed = [p for p in paths if p in needed_set]
    views = embed_member_views(needed, cache, members=members)
    index = {p: i for i, p in enumerate(needed)}
    ok = views["ok"].astype(bool)
    member_views = {k: v for k, v in views.items() if k in VIEWS}
    print(f"CFP {root}: {len(needed)} photos, a face found in {int(ok.sum())}")
    print(f"folds 1-{args.folds}: {len(ff)} frontal-frontal and {len(fp)} frontal-profile pairs")
    print("\nComposition check (cached member views vs the product's engine, same photos)")
    check_composition(needed, {**member_views, "ok": ok}, configs)

    print(
        "\n| configuration | FF acc | FF TAR@0.1% | FP acc | FP TAR@0.1% | rank-1 frontal | "
        "rank-20 frontal | rank-1 profile | rank-20 profile | enrol photos/s | search ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in configs:
        vectors = config_vectors(member_views, key)
        f = verification(vectors, ok, index, ff)
        p = verification(vectors, ok, index, fp)
        front = identification(vectors, ok, index, root, "probes_frontal.csv")
        profile = identification(vectors, ok, index, root, "probes_profile.csv")
        fast = speed(root, key, args.speed_photos) if args.speed_photos else None
        speed_cells = (
            f"{fast['enrol_per_s']:.1f} | {fast['search_ms']:.0f}" if fast else "n/a | n/a"
        )
        print(
            f"| {key}: {LABELS.get(key, configuration(key).label)} | "
            f"{f['acc']:.2%} ± {f['sd']:.2%} | {f['tar']:.2%} | "
            f"{p['acc']:.2%} ± {p['sd']:.2%} | {p['tar']:.2%} | "
            f"{front['rank1']:.1%} | {front['rank20']:.1%} | "
            f"{profile['rank1']:.1%} | {profile['rank20']:.1%} | {speed_cells} |",
            flush=True,
        )
    print(
        f"\n(pairs with a photo where no face was found, rejected: FF {f['no_face_pairs']}, "
        f"FP {p['no_face_pairs']}; {f['folds']} folds)"
    )
