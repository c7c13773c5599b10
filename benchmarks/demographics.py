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
CONFIGS = ("fast", "fast-mirror", "dlib", "fused-noflip", "accurate")


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


CHECK_TARGETS = (1e-2, 1e-3, 1e-4)


def check_calibration(key: str, vectors: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Do the rates the product shows hold for every group? Half of each group's photos (seeded)
    are a gallery whose subjects carry their group (every photo its own subject: UTKFace has no
    identity labels); the product's own code calibrates it (pooled gallery pairs plus the
    shipped reference table, and within-group tables) and picks the rate a candidate of each
    group is shown (calibration.groups.choose_rate). The other half measures each group's true
    within-group rate at the same scores. Reported: shown / measured per group, next to what
    the pooled rate alone (the product before group rates) would have shown."""
    from workstation.calibration.groups import choose_rate
    from workstation.calibration.impostors import group_histograms, impostor_histogram
    from workstation.calibration.reference import load_reference
    from workstation.progress import drain

    rng = np.random.default_rng(7)
    in_gallery = np.zeros(len(groups), dtype=bool)
    for group in sorted(set(groups)):
        rows = np.flatnonzero(groups == group)
        in_gallery[rng.choice(rows, size=len(rows) // 2, replace=False)] = True
    gallery_vectors, gallery_groups = vectors[in_gallery], list(groups[in_gallery])
    subjects = [f"g{i}" for i in range(len(gallery_vectors))]
    pooled, _ = drain(impostor_histogram(gallery_vectors, subjects))
    model_id = configuration(key).expected_model_id()
    reference = load_reference(str(model_id)) if model_id is not None else None
    if reference is not None:
        pooled = pooled + reference.histogram
    tables = drain(group_histograms(gallery_vectors, subjects, gallery_groups))
    held_out = within_group_scores(vectors[~in_gallery], groups[~in_gallery])
    print(
        f"  calibration check: gallery {in_gallery.sum()} photos (half of each group), "
        f"held out {(~in_gallery).sum()}; pooled table {pooled.pairs:,} pairs "
        f"({'with' if reference else 'without'} the shipped reference table)"
    )
    print(
        f"    {'pooled':>8} {'group':<16} {'held-out':>9} {'measured':>10} {'shown':>10} "
        f"{'shown/meas':>10} {'pooled/meas':>11}"
    )
    rows = []
    for target in CHECK_TARGETS:
        score = pooled.score_at_fmr(target, use_upper_bound=False)
        if score is None:
            continue
        pooled_rate = pooled.fmr(score)
        assert pooled_rate is not None
        for group, scores in held_out.items():
            k, n = int((scores >= score).sum()), len(scores)
            measured = k / n
            shown = choose_rate(pooled, tables, score, group)
            assert shown is not None
            ratio = shown.estimate.fmr / measured if k else None
            pooled_ratio = pooled_rate.fmr / measured if k else None
            low, high = clopper_pearson(k, n)
            print(
                f"    {target:>8g} {group:<16} {n:>9,} {one_in(measured) if k else '0':>10} "
                f"{shown.estimate.text:>10} "
                f"{'-' if ratio is None else f'{ratio:.2f}':>10} "
                f"{'-' if pooled_ratio is None else f'{pooled_ratio:.2f}':>11}"
            )
            rows.append(
                {
                    "pooled_target": target,
                    "score": round(score, 5),
                    "group": group,
                    "held_out_pairs": n,
                    "held_out_false_matches": k,
                    "measured_fmr": measured,
                    "measured_ci95": [low, high],
                    "shown_fmr": shown.estimate.fmr,
                    "shown_group": shown.group,
                    "shown_over_measured": ratio,
                    "pooled_over_measured": pooled_ratio,
                }
            )
        within = [
            r["shown_over_measured"]
            for r in rows
            if r["pooled_target"] == target and r["shown_over_measured"] is not None
        ]
        pooled_within = [
            r["pooled_over_measured"]
            for r in rows
            if r["pooled_target"] == target and r["pooled_over_measured"] is not None
        ]
        if within:
            print(
                f"    at pooled {target:g}: shown/measured {min(within):.2f}-{max(within):.2f} "
                f"({sum(0.5 <= x <= 2 for x in within)} of {len(within)} groups within 2x); "
                f"pooled alone {min(pooled_within):.2f}-{max(pooled_within):.2f} "
                f"({sum(0.5 <= x <= 2 for x in pooled_within)} within 2x)"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utkface", type=Path, default=DEFAULT_UTKFACE)
    parser.add_argument("--per-group", type=int, default=500)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--embed-only", action="store_true", help="fill the cache and stop")
    parser.add_argument(
        "--sface-only",
        action="store_true",
        help="run SFace only (configurations fast and fast-mirror; dlib costs about 8 times more)",
    )
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json-out", type=Path, help="write the aggregate rates to this file")
    parser.add_argument(
        "--check-calibration",
        action="store_true",
        help="also check the product's per-group rates against held-out measured rates",
    )
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
        report["configurations"][key] = {"label": configuration(key).label, "groups": rows}
        if args.check_calibration:
            report["configurations"][key]["calibration_check"] = check_calibration(
                key, vectors, groups
            )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        print(f"\nwrote {args.json_out} (aggregate rates only)")


if __name__ == "__main__":
    main()
