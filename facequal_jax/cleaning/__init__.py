"""Acting on a report: the decisions file (`decisions`), carrying it out on the source (`plan`, `outputs`,
`carry_out`; `python -m facequal_jax.apply`), and identities shared between data sets (`overlap`)."""
