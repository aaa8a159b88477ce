"""`podium artifacts` and `podium gc`: the large results a run keeps outside its store.

Invariants: listing reads only references (the store's authenticated rows) and the objects'
presence, never their bytes; ``gc`` deletes only objects no kept run's result and no cache
entry refers to, and only those older than ``--grace`` (a live run writes its object just
before the commit that refers to it), plus temporaries that old (left by a killed writer). With
``--keep-last N`` the kept runs are the N newest of each workflow and every run not finished
(a live run, or one whose orchestrator died: it may be resumed); without it, every run.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import click

from podium.cli import cli
from podium.cli.stores import store_option
from podium.errors import NotFoundError

_ARTIFACTS_HELP = (
    "Artifact store URL: a folder, file:///folder or s3://bucket/prefix (default beside the store)."
)


def _open(store_url: str | None, artifacts_url: str | None) -> tuple[Any, Any]:
    from podium.cli.stores import cli_store_url, open_cli_store
    from podium.store.artifact_url import open_artifacts

    store = open_cli_store(store_url, read_only=True)
    try:
        return store, open_artifacts(artifacts_url, cli_store_url(store_url))
    except BaseException:
        store.close()
        raise


@cli.command("artifacts")
@click.argument("run_id")
@click.argument("task", required=False)
@store_option
@click.option("--artifacts", "artifacts_url", metavar="URL", help=_ARTIFACTS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per artifact, with lineage).")
def artifacts_cmd(
    run_id: str, task: str | None, store_url: str | None, artifacts_url: str | None, as_json: bool
) -> None:
    """List a run's results kept as artifacts (size, hash, where), or one TASK's."""
    from podium.runtime.lineage import artifact_objects

    store, artifacts = _open(store_url, artifacts_url)
    try:
        record = store.get_run(run_id)
        results = store.results(run_id, artifacts_only=True)
    finally:
        store.close()
    if task is not None:
        if task not in results:
            raise NotFoundError(f"run {run_id!r} has no result of task {task!r} kept as an artifact")
        results = {task: results[task]}
    rows = []
    for obj in artifact_objects(results):
        digest = obj["digest"]
        where = artifacts.where(digest) if artifacts is not None else "(no artifact store open)"
        present = artifacts.exists(digest) if artifacts is not None else False
        head = {"run_id": run_id, "workflow": record.workflow}
        rows.append({**head, **obj, "where": where, "present": present})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"run {run_id} keeps no results as artifacts" + (f" for task {task}" if task else ""))
        return
    for r in rows:
        state = (
            "" if r["present"] and r["authenticated"] else (" MISSING" if not r["present"] else " UNTRUSTED")
        )
        name = f"{r['algorithm']}:{r['digest'][:16]}"
        click.echo(f"{r['task_id']}  {_size(r['size'])}  {name}  {r['where']}{state}")


@cli.command("gc")
@store_option
@click.option("--artifacts", "artifacts_url", metavar="URL", help=_ARTIFACTS_HELP)
@click.option(
    "--grace",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Keep unreferenced objects younger than this many seconds.",
)
@click.option(
    "--keep-last",
    type=click.IntRange(1),
    metavar="N",
    help="Keep only the artifacts of the N newest runs of each workflow (and of unfinished runs and "
    "cache entries); older runs' artifacts are deleted (resuming such a run runs those tasks again).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
def gc_cmd(
    store_url: str | None, artifacts_url: str | None, grace: float, keep_last: int | None, dry_run: bool
) -> None:
    """Delete artifacts that no kept run's result and no cache entry refers to."""
    from podium.runtime.codec import referenced as names
    from podium.store.artifacts import collect

    store, artifacts = _open(store_url, artifacts_url)
    try:
        if artifacts is None:
            click.echo("no artifact store: nothing to collect")
            return
        referenced, dropped = _kept(store, keep_last, names)
    finally:
        store.close()
    gone = collect(artifacts, referenced, grace, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    runs = f" of {dropped} older run(s)" if keep_last is not None else ""
    freed = _size(sum(s for _, s in gone))
    click.echo(f"{verb} {len(gone)} object(s){runs}, {freed}; kept {len(referenced)} referenced")


def _kept(store: Any, keep_last: int | None, names: Any) -> tuple[set[str], int]:
    """The artifact names kept runs and the cache refer to, and how many runs are not kept.
    Results and cache entries are counted as rows (``artifact_refs`` lists each row), so an
    object an old run shares with a kept run or a cache entry stays."""
    from podium.model.states import RUN_FINISHED

    if keep_last is None:
        return names(store.artifact_refs()), 0
    old: list[str] = []
    seen: Counter[str] = Counter()
    for run in store.list_runs(limit=1 << 62):  # newest first
        seen[run.workflow] += 1
        if seen[run.workflow] > keep_last and run.status in RUN_FINISHED:
            old.append(run.run_id)
    dropped = {rid: _ref_rows(store, rid) for rid in old}
    rows = Counter(store.artifact_refs())  # read after the old runs': a newer row is kept
    live = {r.run_id for r in store.list_runs(limit=1 << 62) if r.status not in RUN_FINISHED}
    old = [rid for rid in old if rid not in live]  # resumed meanwhile: kept after all
    for rid in old:
        rows.subtract(dropped[rid])
    return names(data for data, n in rows.items() if n > 0), len(old)


def _ref_rows(store: Any, run_id: str) -> list[bytes]:
    return [rec.data for rec in store.results(run_id).values() if rec.encoding == "artifact"]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
