"""Alembic migrations: one branch per module, so a bank can adopt modules one by one.

Each module's revisions form their own branch (``branch_labels`` = the module's name) in ``versions/``.
A branch's first revision has ``down_revision = None`` and ``depends_on`` the first revisions of the
branches whose tables it references by foreign key (every branch needs ``core``; ``origination`` also needs
``parties``). ``core.migrate.upgrade`` brings every branch to its head, or only the named modules' branches
(with what they depend on).

Revision ids are ``<module>_<number>`` with numbers from 0100 on: 0001-0099 belong to the retired single
chain kept in ``legacy/``, which is used only to bring a database built by it to its last revision before it
is re-stamped onto the branches (see ``core.migrate``). A new revision of a module continues its branch:
``down_revision`` = that branch's current head (e.g. ``core_0100``), ``branch_labels = None``, ``depends_on``
the revision of another branch it needs (if any), id and file name ``<module>_0101_<what>.py``.
"""
