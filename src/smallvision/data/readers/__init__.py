"""File readers, one module per format family; each registers its schemes in ``SOURCES``."""
