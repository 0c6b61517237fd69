"""Training entry points (encoder pretraining and proxy models) live in this package."""
