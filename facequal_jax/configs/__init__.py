"""The configs shipped with the package: `--config=NAME[:ARG]` names one of these files (see `config_files`)."""
