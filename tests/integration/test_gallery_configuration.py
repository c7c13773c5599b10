"""A gallery keeps the face-model configuration it was built with: a gallery built before the
default changed is searched with its own configuration (with a note), not refused; an explicit
--backend that differs is refused; `reembed` moves it to the configuration chosen."""

from __future__ import annotations

import io
import json
from pathlib import Path

from workstation.cli import main
from workstation.gallery.store import Gallery
from workstation.vision.registry import (
    DEFAULT_CONFIGURATION,
    configuration,
    configuration_key_for_gallery,
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_gallery_s_configuration_wins_over_the_setting() -> None:
    mirror_id = str(configuration("fast-mirror").expected_model_id())
    assert DEFAULT_CONFIGURATION != "fast-mirror"
    assert configuration_key_for_gallery(mirror_id, DEFAULT_CONFIGURATION) == "fast-mirror"
    # 'opencv' became 'fast' (same embeddings): its galleries are 'fast' galleries.
    assert (
        configuration_key_for_gallery(
            str(configuration("opencv").expected_model_id()), DEFAULT_CONFIGURATION
        )
        == "fast"
    )
    assert configuration_key_for_gallery(None, "accurate") == "accurate"  # a new gallery
    # Not a listed configuration (e.g. an insightface pack): the setting decides.
    assert configuration_key_for_gallery("some-pack/w600k:abc:512", "fast") == "fast"


def test_an_older_gallery_is_searched_with_its_own_configuration(
    tmp_path: Path, photo_paths
) -> None:
    gallery = str(tmp_path / "g")
    code, _, err = run(
        "--gallery",
        gallery,
        "--backend",
        "fast-mirror",
        "enroll",
        "--subject",
        "P-OBAMA",
        str(photo_paths["obama"]),
    )
    assert code == 0, err
    search = ("search", "--case", "2026-0101", "--purpose", "upgrade test", "--json")
    code, out, err = run("--gallery", gallery, *search, str(photo_paths["obama2"]))
    assert code == 0, err
    assert "built with the 'fast-mirror' face model configuration" in err
    record = json.loads(out.splitlines()[0])
    assert record["candidates"][0]["subject_id"] == "P-OBAMA"
    assert record["model_id"] == str(configuration("fast-mirror").expected_model_id())
    # Asked for another configuration explicitly: refused, in words, naming reembed.
    code, _, err = run(
        "--gallery",
        gallery,
        "--backend",
        DEFAULT_CONFIGURATION,
        *search,
        str(photo_paths["obama2"]),
    )
    assert code != 0 and "reembed" in err
    # `reembed` moves the gallery to the setting's configuration (the default here).
    code, _, err = run("--gallery", gallery, "reembed")
    assert code == 0, err
    with Gallery(gallery) as opened:
        assert opened.model_id == str(configuration(DEFAULT_CONFIGURATION).expected_model_id())
    code, out, err = run("--gallery", gallery, *search, str(photo_paths["obama2"]))
    assert code == 0 and "built with" not in err, err
