"""Bring one catalog dataset up to date with what a crawl measured: only what changed,
all of it or none of it.

For one dataset, :meth:`DatasetSync.sync`:

1. reads the dataset (``package_show``), unless the caller read it already with
   :meth:`DatasetSync.read_many` (one ``package_search`` for many datasets);
2. compares each known value with the catalog's by meaning (:mod:`.fields`); an
   unchanged dataset ends here, with no write;
3. writes the changed fields in one ``package_patch`` (dry run: logs them instead);
4. verifies: ``package_patch`` answers with the dataset as CKAN shows it after the
   commit (package_update ends with package_show), so that answer is the read-back.
   When the patch failed in a way that leaves its effect unknown (timeout, server
   error), the dataset is read again;
5. if the patch failed or any field reads back different from what was written (a
   field the catalog's schema does not keep, a validator that changes it), the fields
   that differ from their previous values are patched back to them, and the dataset is
   reported as failed. If even that fails, the error log lists the previous values.

CKAN applies one package_patch in one database transaction (a failed search-index
update rolls it back), so a refused patch writes nothing; the restore covers what
CKAN accepted but did not keep as sent.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ckancrawl.catalog.client import CatalogClient, CatalogError
from ckancrawl.catalog.fields import CatalogField

logger = logging.getLogger(__name__)

UNCHANGED = "unchanged"
UPDATED = "updated"
WOULD_UPDATE = "would update"
FAILED = "failed"
#: Errors after which CKAN has certainly written nothing.
REFUSALS = frozenset({"not authorized", "not found", "invalid", "bad answer"})


@dataclass
class SyncResult:
    """What happened to one catalog dataset."""

    dataset: str
    outcome: str
    #: Catalog field -> (catalog value before, value written or to write).
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    #: Why it failed: "<kind>: <detail>".
    reason: str | None = None
    #: The error kind of a failure (CatalogError kinds, "not kept", "unknown state").
    failure_kind: str | None = None
    #: After a failure: True when the previous values are back (or were never changed).
    restored: bool | None = None


def describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changes.items())


class DatasetSync:
    """Sync catalog datasets through a CatalogClient; blocking, thread-safe."""

    def __init__(self, client: CatalogClient, *, dry_run: bool = False, overwrite_profile: bool = False):
        self.client = client
        self.dry_run = dry_run
        self.overwrite_profile = overwrite_profile

    def changes(self, dataset: Mapping[str, Any], known: Mapping[str, Any],
                fields: Mapping[str, CatalogField]) -> dict[str, tuple[Any, Any]]:
        """Catalog field -> (catalog value, value to write) for every known value that differs."""
        changed = {}
        for name, value in known.items():
            spec = fields[name]
            if spec.fill_only and not self.overwrite_profile and spec.meaning(dataset.get(name)) is not None:
                continue  # people's curated value stands
            if not spec.same(dataset.get(name), value):
                changed[name] = (dataset.get(name), spec.to_catalog(value))
        return changed

    def read_many(self, refs: list[str]) -> dict[str, dict[str, Any]]:
        """Read many datasets with one ``package_search``; ref (id or name) -> dataset.

        Refs the search does not return are left out: :meth:`sync` then reads them with
        package_show. The search serves CKAN's index, which CKAN updates in the same
        transaction as every write; a stale entry would at worst cost one write that
        changes nothing, or leave a change for the next run, since every write is
        checked against the patch's own answer (the database).
        """
        if not refs:
            return {}
        quoted = " OR ".join('"' + ref.replace('"', "") + '"' for ref in refs)
        answer = self.client.call("package_search", {
            # Parenthesised: CKAN adds required clauses (+state:active) around the fq,
            # beside which a bare "a OR b" would match every dataset.
            "fq": f"+(id:({quoted}) OR name:({quoted}))", "rows": len(refs), "include_private": True,
        })
        found: dict[str, dict[str, Any]] = {}
        for dataset in answer.get("results") or []:
            for key in (dataset.get("id"), dataset.get("name")):
                if key in refs:
                    found[key] = dataset
        return found

    def sync(self, ref: str, known: Mapping[str, Any], fields: Mapping[str, CatalogField],
             label: str | None = None, dataset: Mapping[str, Any] | None = None) -> SyncResult:
        """Sync dataset ``ref`` (id or name) with ``known`` (catalog field -> item value).

        ``label`` names the dataset in messages until the catalog has given its name;
        ``dataset`` is the dataset as read already (else it is read here).
        """
        if dataset is None:
            try:
                dataset = self.client.call("package_show", {"id": ref})
            except CatalogError as error:
                label = label or ref
                return self._failed(label, {}, error.kind, self._explain(error, label), restored=True, log=True)
        name = str(dataset.get("name") or label or ref)
        changes = self.changes(dataset, known, fields)
        if not changes:
            logger.debug("Catalog dataset %s is up to date", name)
            return SyncResult(name, UNCHANGED)
        if self.dry_run:
            logger.info("Catalog dataset %s (dry run, nothing written): would set %s", name, describe_changes(changes))
            return SyncResult(name, WOULD_UPDATE, changes)
        return self._write(name, dataset["id"], changes, fields)

    def _write(self, name: str, dataset_id: str, changes: dict[str, tuple[Any, Any]],
               fields: Mapping[str, CatalogField]) -> SyncResult:
        patch = {field_name: new for field_name, (_, new) in changes.items()}
        try:
            after = self.client.call("package_patch", {"id": dataset_id, **patch}, write=True)
        except CatalogError as error:
            if error.kind in REFUSALS:
                # CKAN validated (or refused) before writing: the dataset is as it was.
                return self._failed(name, changes, error.kind, self._explain(error, name), restored=True, log=True)
            after = self._read_back(dataset_id)
            if after is None:
                return self._unknown_state(name, changes, error)
            reason = f"{error.kind}: {error.detail}"
            kind = error.kind
        else:
            if not isinstance(after, dict):
                after = self._read_back(dataset_id)
                if after is None:
                    return self._unknown_state(name, changes, None)
            reason = None
            kind = None
        not_kept = {n: after.get(n) for n, new in patch.items() if not fields[n].same(after.get(n), new)}
        if not not_kept:
            if reason:
                logger.info("Catalog dataset %s: the patch failed (%s) but its values were stored; "
                            "counted as updated", name, reason)
            logger.info("Catalog dataset %s updated: %s", name, describe_changes(changes))
            return SyncResult(name, UPDATED, changes)
        if reason is None:
            kind = "not kept"
            reason = "not kept: the catalog did not keep " + ", ".join(
                f"{n} (wrote {patch[n]!r}, reads {v!r})" for n, v in not_kept.items()
            ) + ": is the field in the catalog's schema, with these values allowed?"
        return self._restore(name, dataset_id, changes, after, fields, kind, reason)

    def _restore(self, name: str, dataset_id: str, changes: dict[str, tuple[Any, Any]], after: Mapping[str, Any],
                 fields: Mapping[str, CatalogField], kind: str, reason: str) -> SyncResult:
        previous = {n: old for n, (old, _) in changes.items() if not fields[n].same(after.get(n), old)}
        if not previous:
            logger.warning("Catalog dataset %s was not updated (%s); it is as it was", name, reason)
            return self._failed(name, changes, kind, reason, restored=True)
        try:
            restored = self.client.call("package_patch", {"id": dataset_id, **previous}, write=True)
            if not isinstance(restored, dict):
                restored = self._read_back(dataset_id) or {}
        except CatalogError as error:
            restored = self._read_back(dataset_id) or {}
            if any(not fields[n].same(restored.get(n), old) for n, old in previous.items()):
                logger.error(
                    "Catalog dataset %s is half-updated: %s, and restoring the previous values failed (%s). "
                    "Previous values to put back by hand: %s", name, reason, error, previous)
                return self._failed(name, changes, kind, reason, restored=False)
        still_wrong = {n: restored.get(n) for n, old in previous.items() if not fields[n].same(restored.get(n), old)}
        if still_wrong:
            logger.error("Catalog dataset %s: %s; the previous values could not all be restored (%s reads %s). "
                         "Previous values to put back by hand: %s", name, reason, ", ".join(still_wrong),
                         still_wrong, previous)
            return self._failed(name, changes, kind, reason, restored=False)
        logger.warning("Catalog dataset %s was not updated (%s); previous values restored: %s",
                       name, reason, ", ".join(sorted(previous)))
        return self._failed(name, changes, kind, reason, restored=True)

    def _read_back(self, dataset_id: str) -> dict[str, Any] | None:
        try:
            found = self.client.call("package_show", {"id": dataset_id})
        except CatalogError as error:
            logger.debug("Reading back catalog dataset %s failed: %s", dataset_id, error)
            return None
        return found if isinstance(found, dict) else None

    def _unknown_state(self, name: str, changes: dict[str, tuple[Any, Any]], error: CatalogError | None) -> SyncResult:
        cause = f"{error.kind}: {error.detail}" if error else "the patch answer was not a dataset"
        previous = {n: old for n, (old, _) in changes.items()}
        logger.error("Catalog dataset %s: the patch may or may not have been applied (%s) and the dataset could "
                     "not be read back. Check it; previous values: %s", name, cause, previous)
        return self._failed(name, changes, "unknown state", f"unknown state: {cause}", restored=None)

    def _failed(self, name: str, changes: dict[str, tuple[Any, Any]], kind: str, reason: str,
                restored: bool | None, log: bool = False) -> SyncResult:
        if log:
            # While the catalog is down the client said so once; the closing summary lists the datasets.
            level = logging.DEBUG if "not tried:" in reason else logging.WARNING
            logger.log(level, "Catalog dataset %s not updated: %s", name, reason)
        return SyncResult(name, FAILED, changes, reason, kind, restored)

    def _explain(self, error: CatalogError, ref: str) -> str:
        if error.kind == "not authorized":
            return (f"not authorized: the API key in CKAN_API_KEY may not {error.action} dataset {ref} "
                    f"({error.detail}); give the key of a user who can edit it (an editor of its organization)")
        if error.kind == "not found":
            return (f"not found: the catalog has no dataset {ref} (deleted or purged since the crawl read it?) "
                    f"({error.detail})")
        return f"{error.kind}: {error.action}: {error.detail}"
