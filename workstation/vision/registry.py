"""The one list of face-model configurations: what the product can run, and how to build it.

Everything that offers or checks a model choice reads this list: the engine factory below,
settings validation, the CLI's --backend choices, the GUI's settings dialog, `workstation models`,
the installer build (model files to bundle come from the manifest entries named here) and the
calibration (a configuration's shipped reference impostor table). Adding a face model is one
entry here, plus its files' hashes in resources/models/manifest.json and its reference table
under resources/calibration/ (benchmarks/build_calibration_reference.py writes it).

This module sits above the engine and the backends: backends import the engine's protocols, the
engine imports no backend, and only this module imports both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workstation.domain import ModelId
from workstation.errors import ModelError
from workstation.vision.engine import ENROL_DETECTION_SIDE, Detector, Embedder, FaceEngine
from workstation.vision.models import load_manifest, load_verified

YUNET = "yunet-2023mar-int8bq"
SFACE = "sface-2021dec-int8bq"
DLIB_RESNET = "dlib-resnet-v1"
DLIB_LANDMARKS = "dlib-shape-5pt"

# Spread (standard deviation) of each member's cosines between photos of different people, as
# used in fusion (workstation.vision.embedders). Measured by benchmarks/fusion_sigmas.py on the
# different-identity pairs of the labelled development photos (../shared/faces, 3,140 pairs,
# the same pairs as the shipped reference tables); CFP and UTKFace, the test sets, were not used.
SIGMA_SFACE = 0.0970
SIGMA_SFACE_FLIP = 0.0978
SIGMA_DLIB = 0.0404
SIGMA_DLIB_FLIP = 0.0403
# The fast configuration enrols on a 640 px copy instead of 1,280 (vision/engine.py
# ENROL_DETECTION_SIDE), which also lets a large JPEG be decoded at a reduced size: detection and
# decoding were most of enrolment's CPU, and issue 10 part 5 asks 'fast' for 40 photos/s on 2
# cores. Measured on the 140 development photos against SFace alone at 1,280 px (1 December
# 2026; docs/PERFORMANCE.md, "Keeping it fast"): same-person pairs above every stranger pair
# 99.77% both, highest stranger 0.481 against 0.485; each embedding's cosine to the 1,280 px
# one median 0.998, lowest 0.891; 5 photos' face counts differ (a 12 px face and a 0.62
# detection not found; three detections of 0.63-0.76 elsewhere added: listed for review).
FAST_ENROL_DETECTION_SIDE = 640
# Weights of the members in the z-normalised sum. Equal: no weight was tuned on a test set.
WEIGHT_SFACE = 1.0
WEIGHT_DLIB = 1.0


@dataclass(frozen=True)
class EngineOptions:
    """Where to find models: a folder of model files instead of the installed packages, and the
    insightface pack (folder or name) for that configuration."""

    model_dir: Path | None = None
    insightface_pack: Path | str | None = None


@dataclass(frozen=True)
class ReferenceTableSpec:
    """A shipped impostor score table: its file under workstation/resources/ and the SHA-256 of
    its histogram's canonical JSON (an altered table is refused)."""

    resource: str
    sha256: str


@dataclass(frozen=True)
class FaceModelConfig:
    """One configuration of detector + recogniser(s)."""

    key: str  # stored in settings, given to --backend
    label: str  # shown in the settings dialog
    summary: str  # the trade-off in words (settings dialog, `workstation models`, docs)
    model_files: tuple[str, ...]  # manifest entries it loads (bundled by the installer)
    build_embedder: Callable[[EngineOptions], tuple[Embedder, Detector | None]]
    reference: ReferenceTableSpec | None = None
    # The same person's scores (two photos of one person), shown beside the strangers' in the
    # score plot (reports/score_plot.py); never used for a rate.
    mated_reference: ReferenceTableSpec | None = None
    offered: bool = True  # False: measured by the benchmarks, not offered to users
    needs_pack: bool = False  # an insightface pack must be chosen
    licence: str = ""
    # How far false-match rates differed by group for this configuration, measured on UTKFace
    # (benchmarks/demographics.py --check-calibration; docs/ACCURACY.md), in words shown with a
    # pooled rate; empty: not measured (the words then say so and quote the default's).
    group_spread: str = ""
    # The longer side of the copy enrolment detects faces on (search always uses the larger
    # MAX_DETECTION_SIDE plus tiles): enrolment keeps the main face only.
    enrol_detection_side: int = ENROL_DETECTION_SIDE

    def expected_model_id(self) -> ModelId | None:
        """The model id its embeddings carry, from the manifest alone (no model is loaded);
        None when it depends on files the user supplies (insightface packs)."""
        return _EXPECTED_IDS[self.key]() if self.key in _EXPECTED_IDS else None


def _manifest_id(key: str, dim: int = 128) -> ModelId:
    return ModelId(name=key, sha256=load_manifest()["models"][key]["sha256"], dim=dim)


# ----------------------------------------------------------------------------- builders
def _sface(options: EngineOptions) -> Embedder:
    from workstation.vision.opencv_backend import SFaceEmbedder

    return SFaceEmbedder(load_verified(SFACE, options.model_dir))


def _dlib(options: EngineOptions) -> Embedder:
    from workstation.vision.dlib_backend import DlibResNetEmbedder

    return DlibResNetEmbedder(
        load_verified(DLIB_RESNET, options.model_dir),
        load_verified(DLIB_LANDMARKS, options.model_dir),
    )


def _mirrored(embedder: Embedder) -> Embedder:
    from workstation.vision.embedders import MirrorAveraged

    return MirrorAveraged(embedder)


def _fused(members: list[tuple[Embedder, float, float]]) -> Embedder:
    from workstation.vision.embedders import FusedEmbedder

    return FusedEmbedder(members)


def _build_fast(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    return _sface(options), None


def _build_fast_mirror(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    return _mirrored(_sface(options)), None


def _build_dlib(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    return _dlib(options), None


def _build_fused_plain(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    members = [
        (_sface(options), WEIGHT_SFACE, SIGMA_SFACE),
        (_dlib(options), WEIGHT_DLIB, SIGMA_DLIB),
    ]
    return _fused(members), None


def _build_accurate(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    members = [
        (_mirrored(_sface(options)), WEIGHT_SFACE, SIGMA_SFACE_FLIP),
        (_mirrored(_dlib(options)), WEIGHT_DLIB, SIGMA_DLIB_FLIP),
    ]
    return _fused(members), None


def _build_insightface(options: EngineOptions) -> tuple[Embedder, Detector | None]:
    from workstation.vision.insightface_backend import load_pack

    return load_pack(options.insightface_pack)


def _dlib_id() -> ModelId:
    from workstation.vision.dlib_backend import dlib_model_id

    manifest = load_manifest()["models"]
    return dlib_model_id(manifest[DLIB_RESNET]["sha256"], manifest[DLIB_LANDMARKS]["sha256"])


def _fused_id(members: list[tuple[ModelId, float, float]]) -> ModelId:
    from workstation.vision.embedders import FusionMember, fused_model_id

    return fused_model_id([FusionMember(m, w, s) for m, w, s in members])


def _mirrored_id(model: ModelId) -> ModelId:
    from workstation.vision.embedders import mirrored_model_id

    return mirrored_model_id(model)


_EXPECTED_IDS: dict[str, Callable[[], ModelId]] = {
    "fast": lambda: _manifest_id(SFACE),
    "fast-mirror": lambda: _mirrored_id(_manifest_id(SFACE)),
    "dlib": _dlib_id,
    "fused-noflip": lambda: _fused_id(
        [(_manifest_id(SFACE), WEIGHT_SFACE, SIGMA_SFACE), (_dlib_id(), WEIGHT_DLIB, SIGMA_DLIB)]
    ),
    "accurate": lambda: _fused_id(
        [
            (_mirrored_id(_manifest_id(SFACE)), WEIGHT_SFACE, SIGMA_SFACE_FLIP),
            (_mirrored_id(_dlib_id()), WEIGHT_DLIB, SIGMA_DLIB_FLIP),
        ]
    ),
}

# ----------------------------------------------------------------------------- the list
CONFIGURATIONS: tuple[FaceModelConfig, ...] = (
    FaceModelConfig(
        key="fast",
        label="Fast: SFace, one view (shipped)",
        summary=(
            "YuNet finds faces (on a copy of at most 640 px when enrolling), SFace (OpenCV) "
            "embeds each face once. Made for enrolling large galleries: about 2.5 times the "
            "photos per second of 'accurate' (measured), for fewer true pairs accepted at the "
            "same false-match rate (CFP frontal pairs: 98.71% against 99.54% at 1 in 1,000; "
            "99.43% told apart against 99.73%) and fewer profiles found first (79.8% against "
            "83.0%; docs/ACCURACY.md)."
        ),
        model_files=(YUNET, SFACE),
        build_embedder=_build_fast,
        reference=ReferenceTableSpec(
            "calibration/sface-2021dec-int8bq.impostors.json",
            "71e8d02e14626df099785ccbd82c445f78855753efa655d9ff3f3aa6332eb64d",
        ),
        mated_reference=ReferenceTableSpec(
            "calibration/opencv.mated.json",
            "9a10435ead6f05a799d8c3930ebb7cc07e9d97b2462f50cf94507d86427e73d2",
        ),
        licence="YuNet MIT, SFace Apache-2.0",
        group_spread=(
            "measured on web photos (UTKFace, fast configuration: SFace, one view), where the "
            "pooled rate of a mixed gallery was 1 in 1,000, strangers of a person's own group "
            "scored that high 1 in 1,700 (White men) to 1 in 70 (Indian women): up to 14 times "
            "the pooled rate"
        ),
        enrol_detection_side=FAST_ENROL_DETECTION_SIDE,
    ),
    FaceModelConfig(
        key="accurate",
        label="Accurate: SFace and dlib ResNet, fused (shipped)",
        summary=(
            "YuNet finds faces; SFace and dlib's ResNet, two independently trained models, each "
            "embed the face and its mirror image, and their scores are combined. More true "
            "pairs accepted at the same false-match rate than 'fast' (CFP frontal pairs: 99.54% "
            "against 98.71% at 1 in 1,000; 99.73% told apart against 99.43%) and better on "
            "profiles (right person first 83.0% against 79.8%), for about 2.5 times the CPU per "
            "photo of 'fast'. Changing it means "
            "re-embedding the gallery (workstation reembed)."
        ),
        model_files=(YUNET, SFACE, DLIB_RESNET, DLIB_LANDMARKS),
        build_embedder=_build_accurate,
        reference=ReferenceTableSpec(
            "calibration/accurate.impostors.json",
            "c143582affafc048edafb78783e97cc4d8b37d89d921feeff875669b1165e378",
        ),
        mated_reference=ReferenceTableSpec(
            "calibration/accurate.mated.json",
            "7713e6ada3edb8da3f7ce2eee7586346e95adc59175f721f888fe6f641922554",
        ),
        licence="YuNet MIT, SFace Apache-2.0, dlib models CC0 (public domain)",
        group_spread=(
            "measured on web photos (UTKFace, accurate configuration), where the pooled rate of "
            "a mixed gallery was 1 in 1,000, strangers of a person's own group scored that high "
            "1 in 5,200 (White men) to 1 in 43 (Asian women): up to 23 times the pooled rate"
        ),
    ),
    FaceModelConfig(
        key="fast-mirror",
        label="SFace with its mirror image ('fast' galleries made before 1 December 2026)",
        summary=(
            "YuNet finds faces, SFace (OpenCV) embeds each face and its mirror image: what "
            "'fast' was until 1 December 2026, when it became one view for speed. CFP frontal "
            "pairs: 99.14% accepted at 1 in 1,000 (99.56% told apart); the right person first "
            "99.4% of the time from a frontal photo, 82.2% from a profile (docs/ACCURACY.md). "
            "Keep it for such a gallery, or move the gallery to 'fast' or 'accurate' with "
            "`workstation reembed`."
        ),
        model_files=(YUNET, SFACE),
        build_embedder=_build_fast_mirror,
        reference=ReferenceTableSpec(
            "calibration/fast.impostors.json",
            "6fbc6336572e2d4b76ba56a62418e0736a7df273319a4224e9ffe1f89be5da34",
        ),
        mated_reference=ReferenceTableSpec(
            "calibration/fast.mated.json",
            "03112341442fa1958c1172e15678f48c23974b82c0c3f287588b5a871a813cdf",
        ),
        licence="YuNet MIT, SFace Apache-2.0",
        group_spread=(
            "measured on web photos (UTKFace, SFace with its mirror image), where the pooled "
            "rate of a mixed gallery was 1 in 1,000, strangers of a person's own group scored "
            "that high 1 in 2,100 (White men) to 1 in 67 (Indian women): up to 15 times the "
            "pooled rate"
        ),
    ),
    FaceModelConfig(
        key="insightface",
        label="insightface model pack (already on this PC)",
        summary=(
            "A pack the user already has (never downloaded); YuNet finds faces when the pack has "
            "no detector. No shipped reference table: false-match rates come from the gallery."
        ),
        model_files=(YUNET,),
        build_embedder=_build_insightface,
        needs_pack=True,
        licence="insightface pack weights: non-commercial research only",
    ),
    FaceModelConfig(
        key="dlib",
        label="dlib ResNet alone (benchmarks only)",
        summary="YuNet + dlib's ResNet, one view per face; measured, not offered.",
        model_files=(YUNET, DLIB_RESNET, DLIB_LANDMARKS),
        build_embedder=_build_dlib,
        offered=False,
        licence="YuNet MIT, dlib models CC0 (public domain)",
    ),
    FaceModelConfig(
        key="fused-noflip",
        label="SFace and dlib fused, one view (benchmarks only)",
        summary="As 'accurate' without mirror images; measured, not offered.",
        model_files=(YUNET, SFACE, DLIB_RESNET, DLIB_LANDMARKS),
        build_embedder=_build_fused_plain,
        offered=False,
        licence="YuNet MIT, SFace Apache-2.0, dlib models CC0 (public domain)",
    ),
)

# The configuration of a new gallery when settings name none (chosen by measurement: the most
# accurate one that enrols at least 15 photos/s on 2 cores at the speed the rule was set at; see
# docs/ACCURACY.md, "Choosing the default").
DEFAULT_CONFIGURATION = "accurate"


def offered_keys() -> tuple[str, ...]:
    """Configuration keys users may choose (settings, --backend, the settings dialog)."""
    return tuple(config.key for config in CONFIGURATIONS if config.offered)


def all_keys() -> tuple[str, ...]:
    return tuple(config.key for config in CONFIGURATIONS)


# Keys that named a configuration under another name: settings written before the change still
# load. 'opencv' (SFace, one view) became 'fast' on 1 December 2026; what 'fast' was is
# 'fast-mirror', and a gallery built with it keeps using it (configuration_key_for_gallery).
RENAMED_KEYS = {"opencv": "fast"}


def current_key(key: str) -> str:
    """The key a configuration goes by now (see RENAMED_KEYS)."""
    return RENAMED_KEYS.get(key, key)


def configuration(key: str) -> FaceModelConfig:
    """The configuration named `key`; ModelError naming the choices when there is none."""
    key = current_key(key)
    for config in CONFIGURATIONS:
        if config.key == key:
            return config
    raise ModelError(
        f"unknown face model configuration {key!r}; choose one of {', '.join(offered_keys())}"
    )


def configuration_for_model(model_id: str) -> FaceModelConfig | None:
    """The configuration whose embeddings carry this model id (None: none of the listed ones,
    e.g. an insightface pack)."""
    for config in CONFIGURATIONS:
        expected = config.expected_model_id()
        if expected is not None and str(expected) == model_id:
            return config
    return None


def configuration_key_for_gallery(bound_model_id: str | None, preferred: str) -> str:
    """The configuration to search and enrol a gallery with.

    A gallery's embeddings came from one configuration, and a score is only meaningful between
    embeddings of the same one: a gallery bound to a listed configuration is used with it,
    whatever the examiner's setting (which chooses the configuration of new galleries and the
    target of `workstation reembed`). A gallery bound to no listed configuration (an insightface
    pack), or not bound yet, uses `preferred`. Without this, every gallery built before 'fast'
    became the default was refused until re-embedded.
    """
    if bound_model_id:
        config = configuration_for_model(bound_model_id)
        if config is not None:
            return config.key
    return preferred


def bundled_model_files() -> tuple[str, ...]:
    """Manifest entries the shipped configurations load (what the installer must bundle)."""
    keys: list[str] = []
    for config in CONFIGURATIONS:
        if config.needs_pack:
            continue
        keys.extend(k for k in config.model_files if k not in keys)
    return tuple(keys)


def _detector(options: EngineOptions) -> Detector:
    from workstation.vision.opencv_backend import YuNetDetector

    return YuNetDetector(load_verified(YUNET, options.model_dir))


def create_engine(
    backend: str | None = None,
    model_dir: Path | None = None,
    insightface_pack: Path | str | None = None,
) -> FaceEngine:
    """Build the engine of a configuration (DEFAULT_CONFIGURATION when `backend` is None)."""
    config = configuration(backend or DEFAULT_CONFIGURATION)
    options = EngineOptions(model_dir=model_dir, insightface_pack=insightface_pack)
    embedder, own_detector = config.build_embedder(options)
    detector = own_detector if own_detector is not None else _detector(options)
    description = f"{config.label.split(' (')[0]}: {detector.name} + {embedder.model.name}"
    engine = FaceEngine(detector, embedder, description=description)
    engine.configuration = config.key
    engine.enrol_detection_side = config.enrol_detection_side
    engine.factory = lambda: create_engine(config.key, model_dir, insightface_pack)
    return engine
