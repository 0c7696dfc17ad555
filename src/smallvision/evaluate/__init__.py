"""smallvision.evaluate."""
