"""Identities shared between two data sets: every field against a numpy float64 brute force, the same on 1 and
8 devices, and on real faces (LFW-dev split in two, ORL) with the face network."""
import numpy as np
import pytest

import facequal_jax as fq
import faces
import shared_data
from facequal_jax.cleaning.overlap import OverlapThresholds, find_overlap


def _two_sets(seed=0, dim=16):
  """Set A: identities 0-9; set B: 100-105 are A's 0-5 (other images of the same centres), 110-115 its own."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(16, dim))
  def images(centre, count):
    return centres[centre] + 0.35 * rng.normal(size=(count, dim))
  a = [(images(i, 2 + i % 3), i) for i in range(10)]
  b = [(images(i, 1 + i % 4), 100 + i) for i in range(6)] + [(images(10 + j, 3), 110 + j) for j in range(6)]
  stack = lambda parts: (np.concatenate([x for x, _ in parts]).astype(np.float32),
                         np.concatenate([[label] * len(x) for x, label in parts]))
  return stack(a) + stack(b)


def _reference(x, labels, y, other_labels, rule):
  """The documented rule, computed directly in float64."""
  unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
  x, y = unit(np.float64(x)), unit(np.float64(y))
  mean = np.concatenate([x, y]).mean(0)
  x, y = unit(x - mean), unit(y - mean)
  ids, other_ids = np.unique(labels), np.unique(other_labels)
  centroid = unit(np.stack([x[labels == i].sum(0) for i in ids]))
  other_centroid = unit(np.stack([y[other_labels == j].sum(0) for j in other_ids]))
  cos = centroid @ other_centroid.T
  nearest_other = y @ x.T  # other image × image
  out = {}
  for a in range(len(ids)):
    b = int(np.argmax(cos[a]))
    if int(np.argmax(cos[:, b])) != a or cos[a, b] < rule.candidate_similarity:
      continue
    margin = min(cos[a, b] - np.sort(cos[a])[-2], cos[a, b] - np.sort(cos[:, b])[-2])
    mine, theirs = np.flatnonzero(labels == ids[a]), np.flatnonzero(other_labels == other_ids[b])
    hits = [(x[i] @ y.T).max() for i in mine if other_labels[np.argmax(x[i] @ y.T)] == other_ids[b]]
    hits += [nearest_other[j].max() for j in theirs if labels[np.argmax(nearest_other[j])] == ids[a]]
    share = len(hits) / (len(mine) + len(theirs))
    out[int(ids[a])] = (int(other_ids[b]), cos[a, b], margin, share, np.mean(hits) if hits else 0.0,
                        cos[a, b] >= rule.centroid_similarity and margin >= rule.margin and share >= rule.image_share)
  return out


def test_every_field_matches_a_float64_brute_force():
  x, labels, y, other_labels = _two_sets()
  rule = OverlapThresholds()
  pairs = find_overlap(x, labels, y, other_labels, rule)
  expected = _reference(x, labels, y, other_labels, rule)
  assert {p["identity"] for p in pairs} == set(expected)
  for pair in pairs:
    other, cos, margin, share, similarity, shared = expected[pair["identity"]]
    assert pair["other_identity"] == other and pair["shared"] == shared
    np.testing.assert_allclose([pair["centroid_similarity"], pair["margin"], pair["image_share"],
                                pair["image_similarity"]], [cos, margin, share, similarity], atol=1e-5)
  assert [p["centroid_similarity"] for p in pairs] == sorted((p["centroid_similarity"] for p in pairs), reverse=True)
  # The construction: A's 0-5 are B's 100-105, and nothing else.
  assert sorted((p["identity"], p["other_identity"]) for p in pairs if p["shared"]) == [(i, 100 + i) for i in range(6)]


def test_one_and_eight_devices_agree():
  x, labels, y, other_labels = _two_sets(seed=1)
  one = find_overlap(x, labels, y, other_labels, mesh=fq.make_mesh(1))
  eight = find_overlap(x, labels, y, other_labels, mesh=fq.make_mesh(8))
  assert [p["identity"] for p in one] == [p["identity"] for p in eight]
  for a, b in zip(one, eight):
    assert a["other_identity"] == b["other_identity"] and a["shared"] == b["shared"]
    np.testing.assert_allclose(a["centroid_similarity"], b["centroid_similarity"], atol=1e-6)


def test_mismatched_dimensions_are_refused():
  with pytest.raises(ValueError, match="16 and 8 dimensions: embed both with the same encoder"):
    find_overlap(np.ones((4, 16)), np.arange(4), np.ones((4, 8)), np.arange(4))


def _write_list(path, entries, names):
  """An im2rec .lst of (file, label) and its identity names."""
  path.write_text("".join(f"{n}\t{label}\t{file}\n" for n, (file, label) in enumerate(entries)))
  (path.parent / (path.stem + "_identities.txt")).write_text("".join(f"{name}\n" for name in names))


@shared_data.needs("lfw_dev")
def test_lfw_dev_split_in_two_and_orl_with_the_face_network(tmp_path):
  """LFW-dev as two data sets: 30 identities (>= 4 images) in both, their images split between them and named
  apart; each set also has 15 identities of >= 4 images and 40 of one image of its own. The overlap must come
  back with precision >= 0.95 and recall >= 0.9; ORL's 40 people share no one with LFW-dev's B set."""
  faces.require()
  from facequal_jax.configs import iq  # pylint: disable=import-outside-toplevel
  from facequal_jax.data.sources import ImageFolderSource  # pylint: disable=import-outside-toplevel
  from facequal_jax.jobs import run  # pylint: disable=import-outside-toplevel
  lfw = ImageFolderSource(shared_data.path("lfw_dev"))
  counts = np.bincount(lfw.labels)
  rng = np.random.default_rng(0)
  many, single = rng.permutation(np.flatnonzero(counts >= 4)), rng.permutation(np.flatnonzero(counts == 1))
  shared, own = many[:30], (many[30:45], many[45:60])
  sets = ([], []), ([], [])  # (entries, names) of A and B
  def add(which, label, rows, name):
    entries, names = sets[which]
    entries.extend((lfw.paths[row], len(names)) for row in rows)
    names.append(name)
  for label in shared:
    rows = np.flatnonzero(lfw.labels == label)[:8]
    add(0, label, rows[::2], lfw.identity_names[label])
    add(1, label, rows[1::2], "B:" + lfw.identity_names[label])
  for which in (0, 1):
    for label in own[which]:
      add(which, label, np.flatnonzero(lfw.labels == label)[:4], lfw.identity_names[label])
    for label in single[40 * which: 40 * (which + 1)]:
      add(which, label, np.flatnonzero(lfw.labels == label), lfw.identity_names[label])
  for which, name in enumerate("ab"):
    _write_list(tmp_path / f"{name}.lst", *sets[which])
  config = iq.get_config()
  config.data.images, config.overlap.source = str(tmp_path / "a.lst"), str(tmp_path / "b.lst")
  config.mesh.num_devices = 1
  _, findings = run.run(config, str(tmp_path / "ab"))
  found = [p for p in findings["overlap"]["pairs"] if p["shared"]]
  correct = sum(p["other_identity_name"] == "B:" + p["identity_name"] for p in found)
  precision, recall = correct / max(len(found), 1), correct / len(shared)
  print(f"LFW-dev split: {len(found)} shared found, precision {precision:.3f}, recall {recall:.3f}")
  assert precision >= 0.95 and recall >= 0.9
  decisions = (tmp_path / "ab" / "decisions.csv").read_text()
  assert sum(f",identity,{p['identity_name']},drop," in decisions for p in found) == len(found)
  page = (tmp_path / "ab" / run.HTML).read_text()
  section = page[page.index('<section id="overlap"'):]
  section = section[:section.index("</section>")]
  assert f"({len(found)})</span>" in section  # every shared pair, with four faces from each side
  assert section.count('<img class="thumb') == sum(len(p["examples"]) + len(p["other_examples"]) for p in found)

  orl = iq.get_config()
  orl.overlap.source = str(tmp_path / "ab" / "overlap_with" / "embeddings" / "embeddings.npz")  # B, embedded above
  orl.mesh.num_devices = 1
  orl.data.max_images_per_identity = 3  # all 40 people, fewer faces to embed
  _, findings = run.run(orl, str(tmp_path / "orl"))
  assert findings["overlap"]["num_shared"] == 0
