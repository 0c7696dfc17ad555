"""smallvision.train."""
