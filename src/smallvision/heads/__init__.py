"""Head kinds: one file per kind, each registering one :class:`~smallvision.heads.base.HeadKind`.

``HEAD_KINDS.get("classification")`` (from :mod:`smallvision.registry`) gives the kind object
that builds the head, its loss, its saved outputs, its metrics and its report section.
"""
