"""What is measured on embeddings and labels: consistency, spectrum, IQ, diagnostics, verification, statistics."""
