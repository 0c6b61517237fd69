"""Config files: finding one from a `--config` value, and listing its fields with their meanings.

`--config` takes a path (`my_config.py`, `configs/iq.py:ARG`) or the name of a
config shipped in a folder of configs (the product's `facequal_jax/configs/`:
`iq`, `iq.py`; each research entry point names its own), so installed commands
work from any directory. A config's fields are described by the comments beside
(or directly above) their assignments in `get_config`: `--print_config` and the
docs' tables come from them, so they cannot drift. `parse_arg` reads the one
string argument of every `get_config(arg)`.
"""
import dataclasses
import importlib.util
import inspect
import io
import os
import re
import tokenize
from typing import List, Sequence

import ml_collections

from facequal_jax import configs
from facequal_jax.errors import UsageError

PACKAGED_DIR = os.path.dirname(configs.__file__)
_ASSIGNMENT = re.compile(r"^\s*config\.([\w.]+)\s*=")


def packaged_names(folder: str = PACKAGED_DIR) -> List[str]:
  """Names of the configs in `folder` (default: the product's), sorted."""
  return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")


def resolve(value: str, folder: str = PACKAGED_DIR) -> str:
  """A `--config` value → what `ml_collections.config_flags` loads: `FILE[:ARG]`.

  An existing file is taken as given; a bare name (no folder part) is looked up
  among the configs in `folder`, with or without `.py`.

  Raises:
    UsageError: neither a file nor a packaged config; the message lists the packaged ones.
  """
  path, colon, arg = value.partition(":")
  if os.path.isfile(path):
    return value
  name = path[:-3] if path.endswith(".py") else path
  if os.path.dirname(path) == "" and name in packaged_names(folder):
    return os.path.join(folder, name + ".py") + colon + arg
  raise UsageError(f"--config={value}: no such file, and no packaged config of that name "
                   f"(packaged: {', '.join(packaged_names(folder))})")


def resolve_argv(argv: Sequence[str], flag: str = "config", folder: str = PACKAGED_DIR) -> List[str]:
  """`argv` with the value of `--FLAG=VALUE` / `--FLAG VALUE` resolved (`resolve` in `folder`); the rest
  unchanged."""
  out, argv = [], list(argv)
  index = 0
  while index < len(argv):
    argument = argv[index]
    if argument.startswith(f"--{flag}="):
      argument = f"--{flag}=" + resolve(argument.split("=", 1)[1], folder)
    elif argument == f"--{flag}" and index + 1 < len(argv):
      out.append(argument)
      index += 1
      argument = resolve(argv[index], folder)
    out.append(argument)
    index += 1
  return out


def parse_arg(arg: str, config: str, **spec) -> ml_collections.ConfigDict:
  """The argument of `get_config(arg)`: comma-separated words, each `key=value` or a bare word.

  `spec` gives each key its default: a value (a bool, int, float or str,
  whose type the given text is read as), or a tuple of the allowed strings
  (the first is the default). A bare word sets the bool key of that name to
  True, or the tuple key that allows it to that word: `protocol_lfw:smoke,vit`,
  `pretrain_paco:vit_s`, `proxy_arcface:variant=vit`.

  Raises:
    ValueError: an unknown key or word, or a value outside its choices; the
      message names `config` and lists what it takes.
  """
  values = {key: default[0] if isinstance(default, tuple) else default for key, default in spec.items()}
  takes = ", ".join(f"{key} ({'|'.join(default)})" if isinstance(default, tuple) else key
                    for key, default in spec.items())
  for word in filter(None, (part.strip() for part in (arg or "").split(","))):
    key, equals, text = word.partition("=")
    if not equals:
      key = next((name for name, default in spec.items()
                  if (name == word and isinstance(default, bool))
                  or (isinstance(default, tuple) and word in default)), None)
      text = "True" if key and isinstance(spec[key], bool) else word
    if key not in spec:
      raise ValueError(f"the config {config} takes {takes}; got {word!r} in {arg!r}")
    default = spec[key]
    if isinstance(default, tuple):
      if text not in default:
        raise ValueError(f"the config {config}: {key} is one of {', '.join(default)}; got {text!r}")
      values[key] = text
    elif isinstance(default, bool):
      values[key] = text.lower() in ("1", "true", "yes")
    else:
      values[key] = type(default)(text)
  return ml_collections.ConfigDict(values)


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: dotted `name`, `default` as Python writes it, and its `meaning` (the comments)."""
  name: str
  default: str
  meaning: str


def _comments_by_field(source: str) -> dict:
  """Dotted field → its comments in `source`: the block directly above the assignment, then the inline one."""
  lines, comments = source.splitlines(), {}
  inline = {}
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type == tokenize.COMMENT:
      inline[token.start[0] - 1] = token.string.lstrip("#").strip()
  for number, line in enumerate(lines):
    match = _ASSIGNMENT.match(line)
    if not match:
      continue
    above, previous = [], number - 1
    while previous >= 0 and lines[previous].strip().startswith("#"):
      above.insert(0, inline[previous])
      previous -= 1
    own = [inline[number]] if number in inline and not line.strip().startswith("#") else []
    comments[match.group(1)] = " ".join(above + own)
  return comments


def describe(config_path: str, config=None) -> List[Field]:
  """Every leaf field of the config in `config_path` (`FILE[:ARG]`), in the order `get_config` sets them.

  Args:
    config: the values to show (e.g. with command-line overrides); default:
      what `get_config` returns.
  """
  path, _, arg = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("_described_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if config is None:
    config = module.get_config(arg) if arg else module.get_config()
  comments = _comments_by_field(inspect.getsource(module.get_config))
  flat = {}

  def walk(node, prefix: str) -> None:
    for key, value in node.items():
      name = prefix + key
      if hasattr(value, "items"):
        walk(value, name + ".")
      else:
        flat[name] = value

  walk(config, "")
  order = {name: position for position, name in enumerate(comments)}
  names = sorted(flat, key=lambda name: order.get(name, len(order)))
  return [Field(name, repr(flat[name]), comments.get(name, "")) for name in names]


def as_text(fields: Sequence[Field]) -> str:
  """The fields as aligned `name = default  # meaning` lines (what `--print_config` prints)."""
  width = max(len(f"{field.name} = {field.default}") for field in fields)
  return "\n".join(f"{field.name} = {field.default}".ljust(width) + (f"  # {field.meaning}" if field.meaning else "")
                   for field in fields)


def as_markdown(fields: Sequence[Field]) -> str:
  """The fields as a Markdown table (`| field | default | meaning |`), as in the README."""
  rows = ["| field | default | meaning |", "| --- | --- | --- |"]
  rows += [f"| `{field.name}` | `{field.default}` | {field.meaning} |" for field in fields]
  return "\n".join(rows)
