"""smallvision.report."""
