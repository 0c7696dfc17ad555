"""smallvision.data."""
