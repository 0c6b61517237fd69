"""The jobs at the edge: the IQ command's run (`run`, `inputs`) and the validation experiment (`experiment`)."""
