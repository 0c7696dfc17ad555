"""smallvision.models."""
