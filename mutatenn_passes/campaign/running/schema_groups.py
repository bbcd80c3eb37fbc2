"""Which mutants a worker compiles together as one `schemata.Schema`.

Mutants of one model and target whose changed kernels are at one phase (graph-level and
``s_tir`` kernel mutants; ``lowered`` kernel mutants) are grouped in plan order,
`GROUP_SIZE` at a time, when their target links against the original's library (`build.incremental_unavailable`)
and the campaign builds incrementally without keeping artifacts. Each task of a group carries
the definitions of the whole group (`messages.TaskSpec.schema`): the first of them a worker
gets compiles the group, the others reuse it, and the local executor hands a worker the rest
of the group it started (`affinity`). A group whose build killed or hung a worker is
`broken`: its remaining tasks are built one by one, so one bad kernel cannot take the others
with it.
"""

from __future__ import annotations

import hashlib

#: Mutants per schema: larger groups spread the fixed cost thinner but leave more of a group
#: to build one by one when another worker helps with it at the end of a campaign.
GROUP_SIZE = 8


class SchemaGroups:
    """The groups of a campaign's remaining tasks (see the module doc)."""

    def __init__(self, tasks, profiles: dict, enabled: bool):
        """``tasks``: the builds to run, in order; ``profiles``: target ref -> profile."""
        from ...build import incremental_unavailable

        self.group_of: dict[str, str] = {}
        self.members: dict[str, list] = {}
        self.broken: set[str] = set()
        if not enabled:
            return
        open_groups: dict[tuple, list] = {}
        for t in tasks:
            if t.kind != "mutant" or incremental_unavailable(profiles[t.target_ref]):
                continue
            where = (t.model_index, t.target_ref, t.phase == "lowered")
            group = open_groups.setdefault(where, [])
            group.append(t)
            if len(group) == GROUP_SIZE:
                self._close(open_groups.pop(where))
        for group in open_groups.values():
            self._close(group)

    def _close(self, group: list) -> None:
        if len(group) < 2:  # one mutant gains nothing from a schema
            return
        key = hashlib.sha256("".join(t.key for t in group).encode()).hexdigest()[:16]
        self.members[key] = group
        for t in group:
            self.group_of[t.key] = key

    def affinity(self, task) -> str | None:
        """The group ``task`` belongs to (None: built on its own)."""
        key = self.group_of.get(task.key)
        return None if key in self.broken else key

    def schema_of(self, task) -> tuple[str, tuple]:
        """(group key, the group's mutant definitions) for `messages.TaskSpec`."""
        key = self.affinity(task)
        if key is None:
            return "", ()
        return key, tuple(t.definition() for t in self.members[key])

    def finished(self, task, status: str, stage: str) -> None:
        """A task of a group crashed or hung while building: build the rest one by one."""
        key = self.group_of.get(task.key)
        if key and status in ("crashed", "timeout") and stage in ("build", "prepare"):
            self.broken.add(key)
