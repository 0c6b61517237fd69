"""Reading face datasets: sources, preprocessing, variants and embedding extraction."""
