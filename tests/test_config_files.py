"""`--config` names of packaged configs, and field descriptions read from a config's comments."""
import os

import pytest

from facequal_jax import config_files
from facequal_jax.errors import UsageError
from facequal_jax.research import configs as research_configs

A_CONFIG = '''
import ml_collections


def get_config(arg="small"):
  config = ml_collections.ConfigDict()  # a section line is not a field
  config.size = 3 if arg == "small" else 9  # how big
  # Two lines of comment above a field
  # belong to it.
  config.section = ml_collections.ConfigDict()
  config.section.rate = 0.5  # and its own comment follows them
  config.bare = "x"
  return config
'''


def test_packaged_names_resolve_from_anywhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert config_files.packaged_names() == ["iq"]  # the product's; the research configs live apart
  assert config_files.packaged_names(research_configs.FOLDER) == ["finetune_study", "pretrain_paco", "protocol_lfw",
                                                                  "proxy_arcface"]
  packaged = os.path.join(config_files.PACKAGED_DIR, "iq.py")
  assert config_files.resolve("iq") == config_files.resolve("iq.py") == packaged
  assert config_files.resolve("pretrain_paco:tiny", research_configs.FOLDER) == os.path.join(
      research_configs.FOLDER, "pretrain_paco.py") + ":tiny"
  (tmp_path / "iq.py").write_text(A_CONFIG)  # a file of that name here wins over the packaged one
  assert config_files.resolve("iq.py") == "iq.py"
  with pytest.raises(UsageError, match=r"--config=configs/nope.py: no such file.*packaged: iq\)"):
    config_files.resolve("configs/nope.py")
  with pytest.raises(UsageError, match=r"--config=protocol_lfw: .*packaged: iq\)"):
    config_files.resolve("protocol_lfw")  # a research config is not the IQ command's


def test_argv_forms():
  packaged = os.path.join(config_files.PACKAGED_DIR, "iq.py")
  assert config_files.resolve_argv(["prog", "--config=iq", "--config.k=5", "--workdir=w"]) == [
      "prog", f"--config={packaged}", "--config.k=5", "--workdir=w"]
  assert config_files.resolve_argv(["prog", "--config", "iq:x"]) == ["prog", "--config", packaged + ":x"]


def test_fields_take_the_comments_beside_and_above_them(tmp_path):
  path = tmp_path / "a_config.py"
  path.write_text(A_CONFIG)
  fields = config_files.describe(f"{path}:big")
  assert [(f.name, f.default, f.meaning) for f in fields] == [
      ("size", "9", "how big"),
      ("section.rate", "0.5", "and its own comment follows them"),
      ("bare", "'x'", "")]
  fields = config_files.describe(str(path))
  assert fields[0].default == "3" and "section.rate = 0.5  # and its own comment" in config_files.as_text(fields)
  assert config_files.as_markdown(fields).splitlines()[2] == "| `size` | `3` | how big |"


def test_every_iq_field_has_a_meaning():
  fields = config_files.describe(config_files.resolve("iq"))
  assert [f.name for f in fields if not f.meaning] == []
  preprocess = {f.name: f for f in fields}["preprocess.align"]
  assert preprocess.meaning.startswith('"detect" (dlib') and preprocess.meaning.endswith('else "detect".')


def test_parse_arg_reads_bare_words_and_key_values():
  spec = dict(variant=("tiny", "vit_s"), smoke=False, steps=10, rate=0.5, name="x")
  assert config_files.parse_arg("", "c", **spec).to_dict() == dict(variant="tiny", smoke=False, steps=10, rate=0.5,
                                                                     name="x")
  parsed = config_files.parse_arg("vit_s,smoke,steps=3,rate=0.25,name=y", "c", **spec)
  assert parsed.to_dict() == dict(variant="vit_s", smoke=True, steps=3, rate=0.25, name="y")
  assert config_files.parse_arg("smoke=false,variant=tiny", "c", **spec).smoke is False
  with pytest.raises(ValueError, match=r"the config c takes variant \(tiny\|vit_s\), smoke, steps, rate, name; "
                                       r"got 'huge'"):
    config_files.parse_arg("huge", "c", **spec)
  with pytest.raises(ValueError, match=r"variant is one of tiny, vit_s; got 'vit_b'"):
    config_files.parse_arg("variant=vit_b", "c", **spec)
