"""The retired single chain of revisions (core_0001 ... decisioning_0002), across all modules.

It only upgrades a database that an older release built, to its last revision (``LEGACY_HEAD``), whose
schema equals the first revisions of the module branches; ``core.migrate`` then re-stamps it onto them.
Never add a revision here."""
