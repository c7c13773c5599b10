"""False-match rates per demographic group at the thresholds of one pooled rate (UTKFace).

The product shows one false-match rate (FMR) per score, computed over all stranger pairs. If
strangers of one group resemble each other more (to the model) than strangers of another, that
one pooled rate understates the risk for the first group. This measures by how much.

Data: UTKFace (research use only: never commit it or anything derived from its photos beyond
aggregate rates), `labels.csv` with file, age, gender, race, duplicate. Adults only (age >= 18),
files marked duplicate dropped, up to --per-group photos per race-and-gender group (seeded
sample). Impostor pairs: every pair of photos within one group (UTKFace has no identity labels,
so a few pairs may be one person photographed twice: that can only make a group's FMR look
higher). Each configuration of the registry is measured on the same photos, through the
product's own detector and embedders (largest face per photo; cached under /work/cache).

For each configuration: the thresholds where the pooled FMR (all groups' within-group pairs
together) is 1e-3 and 1e-4, then each group's FMR at those thresholds with its pair count and a
two-sided 95% Clopper-Pearson interval. With --json-out, writes only those aggregate rates (no
photo, file name, embedding or score).

Run: python benchmarks/demographics.py [--utkface DIR] [--per-group 500] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from faceset import VIEWS, config_vectors, embed_member_views
from scipy.stats import beta

from workstation.calibration.histogram import one_in
from workstation.vision.registry import configuration

DEFAULT_UTKFACE = Path("/work/datasets/utkface")
CACHE = Path("/work/cache/recognition")
POOLED_TARGETS = (1e-3, 1e-4)
SAMPLE_BASE = 500
CONFIGS = ("opencv", "fast", "dlib", "fused-noflip", "accurate")


def sample(utkface: Path, per_group: int, seed: int = 0) -> list[tuple[str, str]]:
    """(path, group) of up to `per_group` adult, non-duplicate photos per race-and-gender."""
    groups: dict[str, list[str]] = defaultdict(list)
    with open(utkface / "labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["duplicate"] != "0" or int(row["age"]) < 18:
                continue
            groups[f"{row['race']} {row['gender']}"].append(str(utkface / "images" / row["file"]))
    rng = np.random.default_rng(seed)
    subset = np.random.default_rng(seed + 1)
    chosen = []
    for group in sorted(groups):
        files = sorted(groups[group])
        # A seeded sample of up to SAMPLE_BASE; a smaller --per-group is a seeded subset of it,
        # so runs of different sizes share photos (and the embedding cache).
        picked = sorted(rng.choice(len(files), size=min(SAMPLE_BASE, len(files)), replace=False))
        if per_group < len(picked):
            picked = sorted(subset.choice(picked, size=per_group, replace=False))
        chosen.extend((files[i], group) for i in picked)
    return chosen


def within_group_scores(vectors: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    scores = {}
    for group in sorted(set(groups)):
        rows = vectors[groups == group]
        sims = rows @ rows.T
        scores[group] = sims[np.triu_indices(len(rows), k=1)]
    return scores


def pooled_threshold(pooled: np.ndarray, target: float) -> float:
    """The lowest score accepted (score > threshold) with a pooled FMR of at most `target`."""
    ordered = np.sort(pooled)[::-1]
    allowed = int(np.floor(target * len(ordered) + 1e-9))
    return float(ordered[allowed])


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utkface", type=Path, default=DEFAULT_UTKFACE)
    parser.add_argument("--per-group", type=int, default=500)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--embed-only", action="store_true", help="fill the cache and stop")
    parser.add_argument(
        "--sface-only",
        action="store_true",
        help="run SFace only (configurations opencv and fast; dlib costs about 8 times more)",
    )
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json-out", type=Path, help="write the aggregate rates to this file")
    args = parser.parse_args()

    chosen = sample(args.utkface, args.per_group)
    paths = [p for p, _ in chosen]
    CACHE.mkdir(parents=True, exist_ok=True)
    members = ("sface",) if args.sface_only else ("sface", "dlib")
    cache = CACHE / f"utkface_views_{'-'.join(members)}.npz"
    views = embed_member_views(paths, cache, args.worker, args.workers, members)
    if args.embed_only:
        return
    if args.workers > 1:
        from faceset import merge_parts

        merge_parts(cache, paths, args.workers)
        views = embed_member_views(paths, cache, members=members)
    if len(views["ok"]) != len(paths):
        sys.exit(f"only {len(views['ok'])} of {len(paths)} photos are embedded; run again")
    ok = views["ok"].astype(bool)
    groups = np.array([g for _, g in chosen])[ok]
    print(
        f"UTKFace adults: {ok.sum()} of {len(paths)} sampled photos with a face, "
        f"{len(set(groups))} groups (up to {args.per_group} photos each)"
    )
    report: dict[str, object] = {
        "dataset": "UTKFace (aligned crops), adults >= 18, duplicates dropped",
        "per_group": args.per_group,
        "photos": int(ok.sum()),
        "pairs": "all pairs within one race-and-gender group (no identity labels)",
        "configurations": {},
    }
    for key in args.configs.split(","):
        vectors = config_vectors({k: v[ok] for k, v in views.items() if k in VIEWS}, key)
        scores = within_group_scores(vectors, groups)
        pooled = np.concatenate(list(scores.values()))
        print(f"\n{key}: {configuration(key).label}; {len(pooled):,} within-group pairs")
        rows = []
        for target in POOLED_TARGETS:
            threshold = pooled_threshold(pooled, target)
            print(f"  pooled FMR {target:g}: threshold {threshold:.4f}")
            print(
                f"    {'group':<16} {'pairs':>7} {'false':>6} {'FMR':>10} {'x pooled':>8}  95% CI"
            )
            for group, group_scores in scores.items():
                k, n = int((group_scores > threshold).sum()), len(group_scores)
                low, high = clopper_pearson(k, n)
                rate = k / n
                print(
                    f"    {group:<16} {n:>7,} {k:>6} {one_in(rate) if k else '0':>10} "
                    f"{rate / target:8.2f}  {low:.2e}-{high:.2e}"
                )
                rows.append(
                    {
                        "pooled_fmr": target,
                        "threshold": round(threshold, 5),
                        "group": group,
                        "pairs": n,
                        "false_matches": k,
                        "fmr": rate,
                        "ci95": [low, high],
                        "ratio_to_pooled": round(rate / target, 3),
                    }
                )
            rates = [r["fmr"] for r in rows if r["pooled_fmr"] == target and r["fmr"]]
            if rates:
                print(
                    f"    spread (highest / lowest non-zero group): {max(rates) / min(rates):.1f}x"
                )
        report["configurations"][key] = {"label": configuration(key).label, "groups": rows}  # type: ignore[index]
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        print(f"\nwrote {args.json_out} (aggregate rates only)")


if __name__ == "__main__":
    main()
