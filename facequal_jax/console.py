"""How a command talks to the person at the terminal.

- stdout holds the results and nothing else;
- stderr holds stage and progress lines (the `facequal_jax.progress` logger),
  warnings, and an error as one line: `error: WHAT` (exit status 2 for a usage
  error, 1 for a data error; `--verbose` shows the traceback instead);
- every log line, absl's and JAX's INFO lines included, goes to a log file in
  the workdir (`log_to_file`); `--verbose` shows them on stderr too;
- Ctrl-C ends the command at once (`interrupt`).

`prepare_argv` resolves `--config` names of packaged configs
(`config_files.resolve`); `run(main)` is the commands' `app.run`, parsing the
flags and running `main` with these rules.
"""
import logging
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

from absl import app, flags
from absl import logging as absl_logging

from facequal_jax import config_files, interrupt, progress
from facequal_jax.errors import InputError, UsageError

_VERBOSE = flags.DEFINE_bool("verbose", False, "Show every log line on stderr and the traceback of an error.")
LOG_FILE = "log.txt"


class _ConsoleFormatter(logging.Formatter):
  """Progress lines as they are; warnings and worse with their level in front."""

  def format(self, record: logging.LogRecord) -> str:
    text = record.getMessage()
    return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def _one_line(text: str) -> str:
  return " ".join(str(text).split())


def fail(error: BaseException) -> NoReturn:
  """Prints `error` as one line on stderr and exits with its status (2 usage, 1 otherwise)."""
  sys.stderr.write(f"error: {_one_line(error)}\n")
  sys.stderr.flush()
  sys.exit(getattr(error, "exit_status", 1))


def _unknown_field(error: Exception, argv: Sequence[str]) -> UsageError:
  """config_flags' KeyError / AttributeError for a misspelt override → one line keeping its hint."""
  text = str(error).strip("'\"").replace("\\'", "'").replace("\\n", "\n")
  key = text.split("\n")[0].strip("'\"")
  hint = " ".join(line for line in text.split("\n")[1:] if line.startswith("Did you mean"))
  given = next((arg.split("=")[0] for arg in argv if arg.startswith("--config.") and
                arg.split("=")[0].split(".")[-1] == key), None)
  if given is None:
    return UsageError(f"--config: {_one_line(text)}")
  return UsageError(f"{given}: the config has no field {given[len('--config.'):]!r}"
                    + (f"; {hint[0].lower()}{hint[1:]}" if hint else ""))


def _parse_flags(argv: List[str]) -> List[str]:
  verbose = any(arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1") for arg in argv)
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    if verbose:
      raise
    fail(UsageError(str(error)))
  except (KeyError, AttributeError) as error:  # config_flags: an override of a field the config lacks
    if verbose:
      raise
    fail(_unknown_field(error, argv))


def _quiet_console() -> None:
  """Replaces absl's console handler by one for progress lines and warnings (all INFO still reaches files)."""
  root = logging.getLogger()
  root.removeHandler(absl_logging.get_absl_handler())
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(_ConsoleFormatter())
  handler.addFilter(lambda record: record.levelno >= logging.WARNING
                    or record.name.startswith(progress.LOGGER.name))
  root.addHandler(handler)
  root.setLevel(logging.INFO)


def log_to_file(path: str) -> None:
  """Also writes every log line (INFO and up) to `path`, absl-formatted."""
  handler = logging.FileHandler(path)
  handler.setFormatter(absl_logging.PythonFormatter())
  logging.getLogger().addHandler(handler)


def run(main: Callable[[List[str]], Optional[int]], interrupted: Callable[[], str]) -> None:
  """`app.run(main)` with the rules above; `interrupted()` is the line Ctrl-C prints."""

  def guarded(argv: List[str]):
    if _VERBOSE.value:
      absl_logging.set_verbosity(absl_logging.INFO)
    else:
      _quiet_console()
    interrupt.exit_on_interrupt(interrupted)
    try:
      return main(argv)
    except (InputError, OSError) as error:
      if _VERBOSE.value:
        raise
      fail(error)

  app.run(guarded, argv=sys.argv, flags_parser=_parse_flags)


def prepare_argv(default_config: Optional[str] = None, config_folder: str = config_files.PACKAGED_DIR) -> None:
  """Resolves `--config` names in `sys.argv` (`config_files.resolve` among the configs in `config_folder`), adding
  `--config=DEFAULT` when absent.

  Call before `config_flags.DEFINE_config_file(..., None, ...)`, which reads
  `sys.argv` when it is defined; a `--config` that names nothing fails as one line.
  """
  argv = sys.argv
  if default_config and not any(arg == "--config" or arg.startswith("--config=") for arg in argv[1:]):
    argv = argv[:1] + [f"--config={default_config}"] + argv[1:]
  try:
    sys.argv = config_files.resolve_argv(argv, folder=config_folder)
  except UsageError as error:
    fail(error)
