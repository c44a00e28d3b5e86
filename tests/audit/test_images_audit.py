"""Image audit: ground truth for the leakage attacks, and the quality figures' meaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthdata.images.audit import audit_images, closest_pairs, frechet_distance
from synthdata.errors import DataError

DIGITS = Path(__file__).resolve().parents[2] / "sample_datasets" / "digits.npz"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS} is not present")
    data = np.load(DIGITS)
    images, labels = data["images"], data["labels"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(images))
    # Three disjoint sets of real digits: training, holdout, and "synthetic" stand-ins.
    part = lambda lo, hi: (images[order[lo:hi]], labels[order[lo:hi]])  # noqa: E731
    return {"train": part(0, 500), "holdout": part(500, 900), "other": part(900, 1400)}


@pytest.fixture(scope="module")
def copied(digits):
    """The worst generator: it releases its training images."""
    (x, y), (hx, hy) = digits["train"], digits["holdout"]
    return audit_images(x, y, x, y, holdout_images=hx, holdout_labels=hy, seed=0, epochs=6)


@pytest.fixture(scope="module")
def fresh(digits):
    """A perfect generator: new images from the same population."""
    (x, y), (hx, hy), (sx, sy) = digits["train"], digits["holdout"], digits["other"]
    return audit_images(x, y, sx, sy, holdout_images=hx, holdout_labels=hy, seed=0, epochs=6)


def test_copied_training_images_are_flagged(copied):
    leakage = copied["leakage"]
    assert leakage["leak_detected"] is True
    assert leakage["attacks"]["distance_to_closest_record"]["auroc"] >= 0.9
    assert leakage["mia_auc"] >= 0.9
    assert leakage["empirical_epsilon_lower_bound"] > 1.0
    assert leakage["verdict"].startswith("leak detected")
    assert leakage["exact_copies"]["train_share"] == 1.0 and leakage["exact_copies"]["matched"]["significant"]
    memo = leakage["memorisation"]
    assert memo["synthetic_to_train"]["q50"] == 0.0 and memo["share_closer_than_holdout_q01"] == 1.0


def test_copies_violate_a_small_claimed_epsilon(digits):
    (x, _), (hx, _) = digits["train"], digits["holdout"]
    result = audit_images(x, None, x, None, holdout_images=hx, holdout_labels=None, epsilon=0.5, seed=1, epochs=1)
    assert result["leakage"]["leak_detected"] is True
    assert result["leakage"]["verdict"].startswith("VIOLATION")
    assert result["quality"]["ml_utility"] is None


def test_fresh_real_images_are_not_flagged(fresh):
    leakage = fresh["leakage"]
    assert leakage["leak_detected"] is False, leakage["verdict"]
    assert 0.35 < leakage["attacks"]["distance_to_closest_record"]["auroc"] < 0.65
    assert leakage["exact_copies"]["train_share"] == 0.0
    memo = leakage["memorisation"]
    assert memo["share_closer_than_holdout_q01"] < 0.05
    assert memo["synthetic_to_train"]["q50"] > 0.05


def test_quality_keys_and_meaning(copied, fresh, digits):
    for result in (copied, fresh):
        quality = result["quality"]
        assert quality["sdmetrics_score"] is None and "tables" in quality["sdmetrics_note"]
        assert "not the Inception" in quality["frechet_distance_note"]
        utility = quality["ml_utility"]
        assert utility["real"]["accuracy"] > 0.8 and utility["synthetic"]["accuracy"] > 0.8
    # Real images from the same population are about as far as the sampling floor.
    assert fresh["quality"]["frechet_distance"] < 3 * fresh["quality"]["frechet_distance_floor"] + 1e-9
    # Noise is far from digits, and a CNN trained on it predicts no better than chance.
    (x, y), (hx, hy) = digits["train"], digits["holdout"]
    noise = np.random.default_rng(0).integers(0, 256, x.shape).astype(np.uint8)
    bad = audit_images(x, y, noise, y, holdout_images=hx, holdout_labels=hy, seed=0, epochs=3)
    assert bad["quality"]["frechet_distance"] > 10 * fresh["quality"]["frechet_distance"]
    assert bad["quality"]["ml_utility"]["synthetic"]["accuracy"] < 0.35
    assert bad["leakage"]["leak_detected"] is False


def test_report_holds_no_image(copied):
    import json

    text = json.dumps(copied)
    assert len(text) < 200_000
    assert "pixel" in copied["leakage"]["memorisation"]["metric"]


def test_without_holdout_membership_is_skipped(digits):
    (x, y), (sx, sy) = digits["train"], digits["other"]
    result = audit_images(x[:100], y[:100], sx[:100], sy[:100], holdout_images=None, holdout_labels=None, epochs=1)
    assert result["leakage"]["mia_auc"] is None and result["leakage"]["leak_detected"] is None
    assert result["quality"]["ml_utility"] is None
    assert any("holdout" in note for note in result["notes"])


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20_000, 3))
    b = rng.normal(0, 2, (20_000, 3)) + np.array([1.0, 0, 0])
    # |mu|² = 1; per dimension 1 + 4 - 2·2 = 1, three dimensions.
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_closest_pairs_point_at_copies(digits):
    x, _ = digits["train"]
    synthetic = np.concatenate([digits["other"][0][:20], x[7:8]])
    pairs = closest_pairs(x, synthetic, k=2)
    assert pairs[0] == {"synthetic_index": 20, "train_index": 7, "distance": 0.0}


def test_bad_inputs(digits):
    x, y = digits["train"]
    with pytest.raises(DataError, match="one shape"):
        audit_images(x, y, x[:, :4, :4], y, holdout_images=None, holdout_labels=None)
    with pytest.raises(DataError, match="uint8"):
        audit_images(x.astype(float), y, x, y, holdout_images=None, holdout_labels=None)
    with pytest.raises(DataError, match="class code"):
        audit_images(x, y[:-1], x, y, holdout_images=None, holdout_labels=None)


def test_cli_audit_image_mode(tmp_path, digits):
    import json

    from click.testing import CliRunner

    from synthdata.cli import cli

    (x, y), (hx, hy) = digits["train"], digits["holdout"]
    paths = {}
    for name, images, labels in (("train", x[:200], y[:200]), ("holdout", hx[:120], hy[:120]),
                                 ("synthetic", x[:200], y[:200])):  # a generator that copies its training images
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], images=images, labels=labels)
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(cli, ["audit", str(paths["train"]), str(paths["synthetic"]), "--holdout",
                                      str(paths["holdout"]), "--epsilon", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "(200 images) against" in result.output
    assert "Exact copies: 100.00% of synthetic images equal a training image" in result.output
    assert "ML utility (label, 10 classes)" in result.output and "Verdict:" in result.output
    figures = json.loads(out.read_text())
    assert figures["leakage"]["exact_copies"]["train_share"] == 1.0
    assert figures["leakage"]["leak_detected"] is True  # copies violate a claimed epsilon of 1
    assert out.stat().st_size < 50_000  # aggregates only, never an image
    # A table among image sets, and table options on images, are refused in one line.
    (tmp_path / "t.csv").write_text("a\n1\n2\n")
    mixed = CliRunner().invoke(cli, ["audit", str(paths["train"]), str(tmp_path / "t.csv"), "--holdout",
                                     str(paths["holdout"])])
    assert mixed.exit_code == 1 and "all be images" in mixed.output
    target = CliRunner().invoke(cli, ["audit", str(paths["train"]), str(paths["synthetic"]), "--holdout",
                                      str(paths["holdout"]), "--target", "label"])
    assert target.exit_code == 1 and "apply to tables" in target.output


def test_image_sets_are_matched_by_class_name(tmp_path, digits):
    from synthdata.images import ImageSet
    from synthdata.images.audit import audit_image_sets

    (x, y), (hx, hy) = digits["train"], digits["holdout"]

    def image_set(images, labels, names):
        return ImageSet(images=images[..., None], labels=labels, class_names=names, source="s", sha256="0" * 64,
                        mode="L")

    names = [str(d) for d in range(10)]
    train, holdout = image_set(x[:150], y[:150], names), image_set(hx[:60], hy[:60], names)
    # The synthetic set names only two classes, in another order: codes are mapped by name.
    keep = np.isin(y[:150], [3, 7])
    synthetic = image_set(x[:150][keep], np.where(y[:150][keep] == 3, 1, 0), ["7", "3"])
    result = audit_image_sets(train, synthetic, holdout, seed=0)
    assert result["leakage"]["exact_copies"]["train_share"] == 1.0
    assert result["quality"]["ml_utility"]["n_classes"] == 10
    with pytest.raises(DataError, match="class 'zebra'"):
        audit_image_sets(train, image_set(x[:20], np.zeros(20, np.int64) + (np.arange(20) % 2), ["3", "zebra"]),
                         holdout, seed=0)
