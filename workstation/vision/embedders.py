"""Recognisers built from recognisers: mirror averaging and the fused ensemble.

Both wrap any `Embedder` (SFace, dlib, an insightface pack) and are embedders themselves, so the
engine, the gallery, the FAISS index and the calibration see one vector per face whatever the
configuration.

Mirror averaging embeds each prepared face and its mirror image and adds the two L2-normalised
vectors (the engine normalises the sum). A face and its mirror image are the same person seen from
the other side, so averaging cancels some of what is peculiar to one view (lighting from one
side, a slightly turned head, an alignment error). Measured on CFP (benchmarks/accuracy.py,
docs/ACCURACY.md).

Fusion, and why one vector is enough (the maths the FAISS index and the calibration rely on):
member i gives a unit vector e_i; two faces a, b then have the cosine c_i = e_i(a) . e_i(b).
Members' cosines live on different scales (between strangers, SFace's spread around 0.0 with a
standard deviation of about 0.08; dlib's around 0.8 with about 0.03), so adding them lets the
member with the wider spread dominate. The z-normalised score
    Z = sum_i w_i (c_i - mu_i) / sigma_i
(w_i the member's weight, mu_i and sigma_i the mean and standard deviation of its cosines between
strangers, measured on a reference set) puts them on one scale. With
    S = sum_j w_j / sigma_j,  alpha_i = (w_i / sigma_i) / S,
the fused vector of a face is the concatenation of sqrt(alpha_i) * e_i. Its squared length is
sum_i alpha_i |e_i|^2 = 1 (a unit vector), and the inner product of two fused vectors is
    sum_i alpha_i c_i = (Z + sum_i w_i mu_i / sigma_i) / S,
a fixed positive scaling and shift of Z. So ranking by inner product (FAISS) ranks by Z, every
threshold on Z is a threshold on the fused score, and the fused score stays in [-1, 1], which the
calibration's histogram bins assume. The constant means a fused score is NOT on a single model's
cosine scale (strangers score about 0.6, not 0.0): anything that compares a score with a fixed
number must take that number from the calibration of the model in use (see
workstation.calibration.reference.score_at_reference_fmr), never from one model's habits.
Without the sigmas, most of the gain of a second model is lost (measured outside the team:
plain concatenation 99.45%, z-normalised fusion 99.58%).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from workstation.domain import BBox, Landmarks, ModelId
from workstation.errors import ModelError
from workstation.vision.engine import Embedder, PreparedFace, l2_normalise

MIRROR_SUFFIX = "+flip"


def mirrored_model_id(inner: ModelId) -> ModelId:
    """The id of a model's mirror-averaged embeddings: same weights, other vectors, so another
    name (a gallery of one refuses the other)."""
    return ModelId(name=f"{inner.name}{MIRROR_SUFFIX}", sha256=inner.sha256, dim=inner.dim)


class MirrorAveraged:
    """Embeds each face and its mirror image and averages the two."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.parts = inner.parts
        self.model = mirrored_model_id(inner.model)

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        return self.inner.prepare(bgr, box, landmarks)

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        # An aligned crop mirrored left to right is the mirrored face aligned the same way: the
        # template is symmetric about the crop's centre line (ArcFace's to 0.1 px in 112; dlib's
        # chip is centred on the face by construction).
        mirrored = [tuple(np.ascontiguousarray(crop[:, ::-1]) for crop in face) for face in faces]
        both = l2_normalise(self.inner.embed([*faces, *mirrored]))
        return both[: len(faces)] + both[len(faces) :]


@dataclass(frozen=True)
class FusionMember:
    """One member of a fused ensemble: its weight and the spread of its impostor cosines."""

    model: ModelId
    weight: float
    sigma: float

    def spec(self) -> dict[str, object]:
        return {
            "name": self.model.name,
            "sha256": self.model.sha256,
            "dim": self.model.dim,
            "weight": self.weight,
            "sigma": self.sigma,
        }


def fusion_scales(members: list[FusionMember]) -> np.ndarray:
    """sqrt(alpha_i) for each member (see the module docstring)."""
    ratios = np.array([m.weight / m.sigma for m in members], dtype=np.float64)
    return np.sqrt(ratios / ratios.sum())


def fused_model_id(members: list[FusionMember]) -> ModelId:
    """The ensemble's id: its name lists every member (name, weights hash, weight, sigma); its
    hash is the SHA-256 of the full specification (full weights hashes included), so a change
    to any member, weight or sigma is another model to a gallery."""
    if len(members) < 2:
        raise ModelError("a fused ensemble needs at least two member models")
    for member in members:
        if not (member.weight > 0 and member.sigma > 0 and math.isfinite(member.sigma)):
            raise ModelError(f"fusion member {member.model.name}: weight and sigma must be > 0")
    # '#' rather than '@' inside the name: a model id is "name@sha256" and is split at the '@'.
    parts = [
        f"{m.model.name}#{m.model.sha256[:12]}:w={m.weight:g}:sigma={m.sigma:g}" for m in members
    ]
    spec = json.dumps(
        {"fusion": "z-normalised weighted cosine sum", "members": [m.spec() for m in members]},
        sort_keys=True,
        separators=(",", ":"),
    )
    return ModelId(
        name=f"fused({','.join(parts)})",
        sha256=hashlib.sha256(spec.encode("utf-8")).hexdigest(),
        dim=sum(m.model.dim for m in members),
    )


class FusedEmbedder:
    """Several recognisers as one: per-face vectors scaled by sqrt(alpha_i) and concatenated."""

    def __init__(self, members: list[tuple[Embedder, float, float]]) -> None:
        """`members`: (embedder, weight, sigma) for each model, sigma measured on a reference
        set for that very embedder (mirror averaging changes it)."""
        self.members = [embedder for embedder, _, _ in members]
        self.fusion = [FusionMember(e.model, float(w), float(s)) for e, w, s in members]
        self.model = fused_model_id(self.fusion)
        self.scales = fusion_scales(self.fusion).astype(np.float32)
        self.parts = sum(e.parts for e in self.members)

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        prepared: list[np.ndarray] = []
        for member in self.members:
            prepared.extend(member.prepare(bgr, box, landmarks))
        return tuple(prepared)

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        blocks, start = [], 0
        for member, scale in zip(self.members, self.scales, strict=True):
            own = [face[start : start + member.parts] for face in faces]
            blocks.append(l2_normalise(member.embed(own)) * scale)
            start += member.parts
        return np.hstack(blocks).astype(np.float32)

    def member_vectors(self, fused: np.ndarray) -> list[np.ndarray]:
        """Each member's unit vectors back out of fused vectors (for measuring and testing)."""
        out, start = [], 0
        for member, scale in zip(self.fusion, self.scales, strict=True):
            out.append(np.asarray(fused)[..., start : start + member.model.dim] / scale)
            start += member.model.dim
        return out
