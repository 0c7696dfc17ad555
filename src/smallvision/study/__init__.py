"""smallvision.study."""
