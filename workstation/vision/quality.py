"""Probe quality: the measurements an examiner reads before trusting a search.

Thresholds follow common practice for 2-D face recognition: NIST and ISO/IEC 19794-5 guidance puts
a usable face at 30 or more pixels between the eye centres and a good one at 60 or more;
recognisers trained on frontal faces degrade beyond about 25 degrees of yaw and fail badly
beyond 45. Sharpness is the variance of the Laplacian on the 112 px aligned crop, so it does not
depend on the size of the source photo; its thresholds were set on ../shared/faces photos and
their blurred copies (benchmarks/quality_thresholds.py: sharp photos measured 260 and up, median
947; blurred by 9% of the eye distance, median 22).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workstation.domain import Landmarks, Quality, Verdict
from workstation.vision.cvcompat import cv2_module

# Where the nose tip sits between the eye line and the mouth line in the frontal template.
_FRONTAL_NOSE_FRACTION = (71.7366 - 51.5989) / (92.2848 - 51.5989)


@dataclass(frozen=True)
class QualityThresholds:
    inter_eye_poor_px: float = 20.0
    inter_eye_warn_px: float = 40.0
    yaw_warn_deg: float = 25.0
    yaw_poor_deg: float = 45.0
    pitch_warn_deg: float = 25.0
    roll_warn_deg: float = 30.0
    sharpness_poor: float = 30.0
    sharpness_warn: float = 120.0
    detector_warn: float = 0.8


DEFAULT_THRESHOLDS = QualityThresholds()


def sharpness(aligned_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned crop (higher is sharper)."""
    cv2 = cv2_module()
    gray = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)
    # Only the central face area: the black border of a warped crop would add false edges.
    centre = gray[16:104, 16:96]
    return float(cv2.Laplacian(centre, cv2.CV_64F).var())


def inter_eye_px(landmarks: Landmarks) -> float:
    """Distance between the two eye landmarks, in the pixels of the landmarks."""
    (left_x, left_y), (right_x, right_y) = landmarks[0], landmarks[1]
    return float(np.hypot(right_x - left_x, right_y - left_y))


def pose_from_landmarks(landmarks: Landmarks) -> tuple[float, float, float, float]:
    """Estimate (inter-eye px, yaw, pitch, roll) in degrees from five landmarks.

    Roll is the angle of the eye line. Yaw comes from how far the nose tip sits from the eye
    midpoint, relative to half the eye distance (the nose tip stands about half an eye distance in
    front of the eyes, so that ratio is roughly tan(yaw)). Pitch comes from where the nose tip sits
    between the eye line and the mouth line. Both are rough, good to perhaps 10 degrees: enough to
    warn, not to measure.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eye_vector = right_eye - left_eye
    inter_eye = inter_eye_px(landmarks)
    roll = math.degrees(math.atan2(eye_vector[1], eye_vector[0]))
    # Express points in a frame where the eye line is horizontal.
    angle = -math.radians(roll)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    eye_mid = (left_eye + right_eye) / 2
    nose_r = rotation @ (nose - eye_mid)
    mouth_r = rotation @ ((mouth_left + mouth_right) / 2 - eye_mid)
    half_eye = max(inter_eye / 2, 1e-6)
    yaw = math.degrees(math.atan(nose_r[0] / half_eye))
    eye_to_mouth = mouth_r[1]
    if eye_to_mouth > 1e-6:
        fraction = nose_r[1] / eye_to_mouth
        pitch = math.degrees(
            math.asin(max(-1.0, min(1.0, (fraction - _FRONTAL_NOSE_FRACTION) / 0.5)))
        )
    else:
        pitch = 90.0
    return inter_eye, yaw, pitch, roll


def assess_quality(
    aligned_bgr: np.ndarray,
    landmarks: Landmarks | None,
    detector_score: float | None,
    aligned: bool,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> Quality:
    """Measure a face and give a verdict (good / warn / poor) with reasons in words."""
    sharp = sharpness(aligned_bgr)
    poor: list[str] = []
    warn: list[str] = []
    inter_eye = yaw = pitch = roll = None
    if landmarks is not None:
        inter_eye, yaw, pitch, roll = pose_from_landmarks(landmarks)
        if inter_eye < thresholds.inter_eye_poor_px:
            poor.append(
                f"eyes only {inter_eye:.0f} px apart (under {thresholds.inter_eye_poor_px:.0f}): "
                "too small for reliable recognition"
            )
        elif inter_eye < thresholds.inter_eye_warn_px:
            warn.append(
                f"eyes {inter_eye:.0f} px apart (under {thresholds.inter_eye_warn_px:.0f}): "
                "low resolution"
            )
        if abs(yaw) > thresholds.yaw_poor_deg:
            poor.append(f"head turned about {abs(yaw):.0f} degrees: profile views match poorly")
        elif abs(yaw) > thresholds.yaw_warn_deg:
            warn.append(f"head turned about {abs(yaw):.0f} degrees")
        if abs(pitch) > thresholds.pitch_warn_deg:
            warn.append(f"head tilted up or down about {abs(pitch):.0f} degrees")
        if abs(roll) > thresholds.roll_warn_deg:
            warn.append(f"head leaning about {abs(roll):.0f} degrees")
    if not aligned:
        poor.append(
            "no face landmarks found inside the drawn box: embedded without alignment "
            "(low confidence)"
        )
    if sharp < thresholds.sharpness_poor:
        poor.append(f"very blurred (sharpness {sharp:.0f}, under {thresholds.sharpness_poor:.0f})")
    elif sharp < thresholds.sharpness_warn:
        warn.append(f"somewhat blurred (sharpness {sharp:.0f})")
    if detector_score is not None and detector_score < thresholds.detector_warn:
        warn.append(f"detector unsure this is a face (score {detector_score:.2f})")
    verdict = Verdict.POOR if poor else Verdict.WARN if warn else Verdict.GOOD
    return Quality(
        detector_score=detector_score,
        inter_eye_px=inter_eye,
        sharpness=sharp,
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        verdict=verdict,
        reasons=tuple(poor + warn),
    )
