"""What a person reads: the self-contained report.html and its SVG plots (rendering only)."""
