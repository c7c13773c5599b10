"""Accuracy of the default engine on the labelled development photos (../shared/faces).

Everything goes through the public API: create_engine(), load_image(), FaceEngine.analyze()
(largest face of each photo), and the product's own calibration code for predicted FMRs.

Prints:
- detection failures (labelled photos where no face was found);
- verification on pairs.csv (3,561 pairs, 421 same person): ROC AUC, TAR at FAR 1% and 0.1%,
  overall and per source folder (pairs whose two photos are in one folder; a rate is printed
  only when there are enough impostor pairs to measure it);
- 1:N rank-1: each photo in turn is the probe and all the other photos are the gallery; counted
  over probes whose person has another photo;
- predicted vs measured FMR: a calibration built from some people's impostor pairs predicts the
  FMR at a threshold, which is then measured on other people's impostor pairs (2-fold split by
  identity, and leave-one-set-out, which adds a change of photo style).

Run: python benchmarks/accuracy.py [--faces DIR]   (default ../shared/faces beside the repo)

With --cfp DIR (CFP, Celebrities in Frontal-Profile, research use only: never copied into the
repo) it instead prints, for each configuration of the registry (SFace alone, SFace with its
mirror image, dlib alone, the two fused, fused with mirror images):
- frontal-frontal (FF) and frontal-profile (FP) verification on the official 10-fold protocol:
  accuracy with the threshold chosen on 9 folds and tested on the 10th (mean and standard
  deviation over the 10), and TAR at FAR 0.1% over all the protocol's pairs;
- 1:N identification: gallery frontal/01 of the 500 people, probes frontal/02 and profile/01,
  rank-1 and rank-20;
- speed: enrolment photos/s through the product's enrol() and probe-to-candidates ms through
  search_image() on a gallery of the 500 frontal/01 photos.
Every photo's four member views (SFace and dlib, each of the face and of its mirror image) are
computed once through the product's own detector and embedders and cached under
/work/cache/recognition; each configuration's vectors are composed from them with the product's
fusion code, and checked against create_engine(configuration) on real photos first.
    python benchmarks/accuracy.py --cfp /work/datasets/cfp [--workers 2] [--folds 10]
With --sface-only, only SFace's two views are computed (their own cache file, seeded with the
photos the full cache has) and only the SFace configurations (`fast`, `fast-mirror`) are printed:
dlib's two views cost about 8 times SFace's on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from faceset import DEFAULT_FACES, Embedded, embed_labelled, impostor_scores, pair_sets
from scipy.stats import rankdata

from workstation import __version__
from workstation.calibration.histogram import ImpostorHistogram, one_in
from workstation.calibration.reference import load_reference
from workstation.vision.registry import create_engine


# ---------------------------------------------------------------------- verification
def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """ROC AUC = P(genuine score > impostor score), ties counted half (Mann-Whitney)."""
    ranks = rankdata(np.concatenate([genuine, impostor]))
    n_g, n_i = len(genuine), len(impostor)
    return float((ranks[:n_g].sum() - n_g * (n_g + 1) / 2) / (n_g * n_i))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float] | None:
    """(TAR, threshold) at the strictest threshold whose FAR is at most `far`.

    None when there are too few impostor pairs to measure that FAR (fewer than 1 / far).
    """
    n = len(impostor)
    if n < round(1 / far):
        return None
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * n + 1e-9))
    threshold = float(ordered[allowed]) if allowed < n else float(ordered[-1]) - 1e-6
    # accept when score > threshold: at most `allowed` impostors pass
    return float((genuine > threshold).mean()), threshold


def pair_scores(data: Embedded, faces_dir: Path) -> list[dict[str, object]]:
    index = {p: i for i, p in enumerate(data.paths)}
    rows = []
    with open(faces_dir / "pairs.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            a, b = index[row["path_a"]], index[row["path_b"]]
            folder_a, folder_b = data.folders[a], data.folders[b]
            rows.append(
                {
                    "set": row["set"],
                    "folder": folder_a if folder_a == folder_b else "(across folders)",
                    "same": row["same"] == "1",
                    "ok": bool(data.ok[a] and data.ok[b]),
                    "score": float(data.vectors[a] @ data.vectors[b]),
                }
            )
    return rows


def verification_line(label: str, rows: list[dict[str, object]]) -> str:
    usable = [r for r in rows if r["ok"]]
    genuine = np.array([r["score"] for r in usable if r["same"]], dtype=np.float64)
    impostor = np.array([r["score"] for r in usable if not r["same"]], dtype=np.float64)
    if len(genuine) == 0 or len(impostor) == 0:
        return f"  {label:<24} {len(genuine):>5} {len(impostor):>6}   (needs both kinds of pair)"
    cells = []
    for far in (0.01, 0.001):
        measured = tar_at_far(genuine, impostor, far)
        cells.append("     n/a" if measured is None else f"{measured[0]:8.1%}")
    return (
        f"  {label:<24} {len(genuine):>5} {len(impostor):>6} {auc(genuine, impostor):8.4f} "
        + " ".join(cells)
    )


# ---------------------------------------------------------------------- identification
def rank_one(data: Embedded) -> tuple[dict[str, list[bool]], int]:
    """Per folder, rank-1 hits of mated probes (gallery = every other photo with a face)."""
    usable = np.flatnonzero(data.ok)
    identities = np.array(data.identities)
    vectors = data.vectors[usable]
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    hits: dict[str, list[bool]] = defaultdict(list)
    unmated = 0
    for row, photo in enumerate(usable):
        others = identities[usable] == identities[photo]
        others[row] = False
        if not others.any():
            unmated += 1
            continue
        best = int(np.argmax(sims[row]))
        hits[data.folders[photo]].append(bool(identities[usable[best]] == identities[photo]))
    return hits, unmated


# ---------------------------------------------------------------------- calibration check
def predicted_vs_measured(
    calibration: ImpostorHistogram, measured_on: np.ndarray, label: str
) -> list[str]:
    lines = []
    for target in (0.01, 0.001):
        threshold = calibration.score_at_fmr(target, use_upper_bound=False)
        if threshold is None:
            continue
        predicted = calibration.fmr(threshold)
        measured_k = int((measured_on >= threshold).sum())
        assert predicted is not None
        lines.append(
            f"  {label:<34} {threshold:7.4f}  {predicted.fmr:9.5f} ({predicted.pairs:>5})  "
            f"{measured_k / len(measured_on):9.5f} ({measured_k}/{len(measured_on)})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="labelled photo folder")
    parser.add_argument("--cfp", type=Path, help="measure on CFP in this folder instead")
    parser.add_argument("--folds", type=int, default=10, help="CFP: use folds 1..N only")
    parser.add_argument("--workers", type=int, default=1, help="CFP: embedding processes")
    parser.add_argument("--worker", type=int, default=None, help="CFP: be one embedding worker")
    parser.add_argument("--speed-photos", type=int, default=60, help="CFP: photos per speed run")
    parser.add_argument(
        "--cached-only", action="store_true", help="CFP: only photos already embedded"
    )
    parser.add_argument(
        "--sface-only",
        action="store_true",
        help="CFP: SFace's views only (configurations fast and fast-mirror; dlib costs 8x more)",
    )
    args = parser.parse_args()
    if args.cfp is not None:
        from cfp import run_cfp

        run_cfp(args)
        return
    faces_dir = args.faces.resolve()
    started = time.perf_counter()
    engine = create_engine()
    data = embed_labelled(engine, faces_dir)
    elapsed = time.perf_counter() - started
    print(
        f"workstation {__version__}, model {engine.model.short} ({engine.description}), "
        f"Python {platform.python_version()}"
    )
    print(f"faces: {faces_dir}")
    print(
        f"photos: {len(data.paths)} labelled, {int(data.ok.sum())} with a face; detection "
        f"failures: {len(data.failures)}  ({elapsed:.1f} s to load, detect and embed)"
    )
    for path, reason in data.failures:
        print(f"  no face: {path}: {reason}")

    rows = pair_scores(data, faces_dir)
    print("\nVerification (pairs.csv; TAR = same-person pairs accepted at the FAR's threshold)")
    print(f"  {'pairs':<24} {'same':>5} {'differ':>6} {'AUC':>8} {'TAR@1%':>8} {'TAR@0.1%':>8}")
    print(verification_line("all", rows))
    for key in ("set", "folder"):
        for value in sorted({str(r[key]) for r in rows}):
            label = f"{key} {value}"
            print(verification_line(label, [r for r in rows if r[key] == value]))

    hits, unmated = rank_one(data)
    print("\n1:N identification (each photo as probe, all other photos as gallery)")
    total_hits = sum(sum(h) for h in hits.values())
    total = sum(len(h) for h in hits.values())
    print(f"  {'all':<24} rank-1 {total_hits / total:6.1%} ({total_hits}/{total} mated probes)")
    for folder in sorted(hits):
        h = hits[folder]
        print(f"  {folder:<24} rank-1 {sum(h) / len(h):6.1%} ({sum(h)}/{len(h)})")
    print(f"  ({unmated} probes have no other photo of their person and are not counted)")

    print("\nPredicted vs measured FMR (calibration from some people, measured on others)")
    print(
        f"  {'calibrated on -> measured on':<34} {'score':>7}  {'predicted (pairs)':>17}  "
        f"{'measured (pairs)':>16}"
    )
    identities = np.array(data.identities)
    names = sorted(set(data.identities))
    fold = {name: i % 2 for i, name in enumerate(names)}
    in_fold = np.array([fold[i] for i in identities])
    everything = np.arange(len(data.paths))
    for a, b in ((0, 1), (1, 0)):
        calibration = ImpostorHistogram.from_scores(impostor_scores(data, everything[in_fold == a]))
        measured = impostor_scores(data, everything[in_fold == b])
        for line in predicted_vs_measured(calibration, measured, f"identity half {a} -> half {b}"):
            print(line)
    sets = pair_sets(data)
    for name in sorted(set(sets)):
        inside = sets == name
        people_inside = set(identities[inside])
        outside = ~inside & ~np.isin(identities, list(people_inside))
        calibration = ImpostorHistogram.from_scores(impostor_scores(data, everything[outside]))
        measured = impostor_scores(data, everything[inside])
        for line in predicted_vs_measured(calibration, measured, f"other sets -> {name}"):
            print(line)

    reference = load_reference(str(engine.model))
    if reference is not None:
        impostor = np.array([r["score"] for r in rows if r["ok"] and not r["same"]])
        genuine = np.array([r["score"] for r in rows if r["ok"] and r["same"]])
        print(
            f"\nShipped reference table {reference.name} ({reference.histogram.pairs:,} impostor "
            "pairs; built from these same photos, so this is an in-sample check)"
        )
        print(f"  {'score':>7} {'shipped FMR':>14} {'pairs.csv impostors':>20} {'same-person':>12}")
        for score in (0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.60):
            estimate = reference.histogram.fmr(score)
            assert estimate is not None
            measured_k = int((impostor >= score).sum())
            print(
                f"  {score:7.2f} {estimate.text:>14} {measured_k:>9}/{len(impostor)} "
                f"({one_in(measured_k / len(impostor)) if measured_k else '0':>8}) "
                f"{(genuine >= score).mean():11.1%}"
            )
    tail_extrapolation(impostor_scores(data))


def tail_extrapolation(impostor: np.ndarray) -> None:
    """Where FMR 1e-4..1e-6 would fall if the impostor tail continued as fitted (used only to
    choose the fixed duplicate threshold, never to report an FMR)."""
    from scipy import stats

    z = np.arctanh(np.clip(impostor, -0.999999, 0.999999))
    cut = np.quantile(impostor, 0.9)
    shape, _, scale = stats.genpareto.fit(impostor[impostor > cut] - cut, floc=0)
    print(
        f"\nImpostor tail extrapolation ({len(impostor):,} pairs, highest {impostor.max():.4f}); "
        "for the fixed duplicate threshold only"
    )
    print(f"  {'FMR':>7} {'normal':>8} {'Fisher-z':>9} {'GPD tail':>9}")
    for q in (1e-4, 1e-5, 1e-6):
        normal = impostor.mean() + stats.norm.isf(q) * impostor.std()
        fisher = np.tanh(z.mean() + stats.norm.isf(q) * z.std())
        gpd = cut + stats.genpareto.isf(q / 0.1, shape, 0, scale)
        print(f"  {q:7.0e} {normal:8.3f} {fisher:9.3f} {gpd:9.3f}")


if __name__ == "__main__":
    main()
