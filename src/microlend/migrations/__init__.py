"""Alembic migrations: one branch per module, so a bank can adopt modules one by one.

Each module's revisions form their own branch (``branch_labels`` = the module's name) in ``versions/``.
A branch's first revision has ``down_revision = None`` and ``depends_on`` the first revisions of the
branches whose tables it references by foreign key (every branch needs ``core``; ``origination`` also needs
``parties``). ``core.migrate.upgrade`` brings every branch to its head, or only the named modules' branches
(with what they depend on): ``microlend db upgrade [--module parties]``.

Revision ids are ``<module>_<number>`` with numbers from 0100 on: 0001-0099 belong to the retired single
chain kept in ``legacy/``, which is used only to bring a database built by it to its last revision before it
is re-stamped onto the branches (see ``core.migrate``). Never add a revision there.

A new revision continues its module's branch: ``down_revision`` = that branch's current head (e.g.
``core_0100``), ``branch_labels = None``, ``depends_on`` = the revisions of other branches it needs by
foreign key (if any), id and file name ``<module>_0101_<what>.py``. On a database at the heads::

    command.revision(alembic_config(url), "event outbox", autogenerate=True, head="core@head",
                     rev_id="core_0101")

then keep in it only that module's tables and split ``upgrade()`` into one helper per table.
"""
