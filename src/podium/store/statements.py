"""The SQL text of the store, written once and spelled for each dialect's placeholder.

Invariants: the statements run unchanged on SQLite and PostgreSQL (standard SQL plus
``ON CONFLICT``, ``ROW_NUMBER``, ``TRUE``); the text never holds a literal ``?`` other than a
placeholder; the columns match the schema of ``migrations``.
"""

from __future__ import annotations

from dataclasses import dataclass

_RUN_COLS = "run_id, workflow, status, created_at, updated_at, params, source, owner"
_RESULT_COLS = "task_id, attempt, data, checksum, encoding, mac"
_LOG_COLS = "task_id, attempt, text, cut, marks"


@dataclass(frozen=True, slots=True)
class Statements:
    """Every fixed statement, spelled with one dialect's placeholder ``param``."""

    param: str
    insert_run: str
    insert_event: str
    insert_result: str
    delete_result: str
    insert_history: str
    select_workflow: str
    select_run: str
    list_runs: str
    select_events: str
    select_results: str
    select_artifact_results: str
    select_cache: str
    upsert_cache: str
    durations: str
    history: str
    request_cancel: str
    cancel_requested: str
    run_exists: str
    seqs_between: str
    result_tasks: str
    insert_attention: str
    attention_of: str
    attention_all: str
    get_meta: str
    put_meta: str
    delete_meta: str
    artifact_refs: str
    upsert_log: str
    select_log: str
    select_last_log: str
    log_index: str
    last_seq: str
    upsert_snapshot: str
    select_snapshot: str

    @classmethod
    def spelled(cls, param: str) -> Statements:
        def q(sql: str) -> str:
            return sql.replace("?", param)

        return cls(
            param=param,
            insert_run=q(f"INSERT INTO runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            insert_event=q(
                "INSERT INTO events (run_id, seq, type, task_id, attempt, ts, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            insert_result=q(f"INSERT INTO results (run_id, {_RESULT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            delete_result=q("DELETE FROM results WHERE run_id = ? AND task_id = ?"),
            insert_history=q(
                "INSERT INTO history (workflow, task, ts, run_id, seq, duration, max_rss) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            select_workflow=q("SELECT workflow FROM runs WHERE run_id = ?"),
            select_run=q(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?"),
            list_runs=q(f"SELECT {_RUN_COLS} FROM runs ORDER BY created_at DESC, id DESC LIMIT ?"),
            select_events=q(
                "SELECT seq, type, task_id, attempt, ts, data FROM events "
                "WHERE run_id = ? AND seq > ? ORDER BY seq"
            ),
            select_results=q(f"SELECT {_RESULT_COLS} FROM results WHERE run_id = ? ORDER BY task_id"),
            select_artifact_results=q(
                f"SELECT {_RESULT_COLS} FROM results "
                "WHERE run_id = ? AND encoding = 'artifact' ORDER BY task_id"
            ),
            select_cache=q(f"SELECT {_RESULT_COLS} FROM cache WHERE key = ?"),
            upsert_cache=q(
                f"INSERT INTO cache (key, {_RESULT_COLS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, attempt = excluded.attempt, "
                "data = excluded.data, checksum = excluded.checksum, encoding = excluded.encoding, "
                "mac = excluded.mac, created_at = excluded.created_at"
            ),
            durations=q(
                "SELECT duration FROM history WHERE workflow = ? AND task = ? "
                "ORDER BY ts DESC, run_id DESC, seq DESC LIMIT ?"
            ),
            history=q(
                "SELECT task, duration FROM (SELECT task, duration, ROW_NUMBER() OVER "
                "(PARTITION BY task ORDER BY ts DESC, run_id DESC, seq DESC) AS k "
                "FROM history WHERE workflow = ?) AS h WHERE k <= ? ORDER BY task, k"
            ),
            request_cancel=q("UPDATE runs SET cancel_requested = TRUE WHERE run_id = ?"),
            cancel_requested=q("SELECT cancel_requested FROM runs WHERE run_id = ?"),
            run_exists=q("SELECT 1 FROM runs WHERE run_id = ?"),
            seqs_between=q("SELECT seq FROM events WHERE run_id = ? AND seq BETWEEN ? AND ?"),
            result_tasks=q("SELECT task_id FROM results WHERE run_id = ?"),
            insert_attention=q("INSERT INTO attention (run_id, ts, message) VALUES (?, ?, ?)"),
            attention_of=q("SELECT run_id, message FROM attention WHERE run_id = ? ORDER BY ts, message"),
            attention_all=q("SELECT run_id, message FROM attention ORDER BY ts, message"),
            get_meta=q("SELECT value FROM meta WHERE name = ?"),
            put_meta=q("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
            delete_meta=q("DELETE FROM meta WHERE name = ?"),
            artifact_refs=(
                "SELECT data FROM results WHERE encoding = 'artifact' "
                "UNION ALL SELECT data FROM cache WHERE encoding = 'artifact'"
            ),
            upsert_log=q(
                f"INSERT INTO logs (run_id, {_LOG_COLS}, size, first_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET text = excluded.text, "
                "cut = excluded.cut, marks = excluded.marks, size = excluded.size"
            ),
            select_log=q(f"SELECT {_LOG_COLS} FROM logs WHERE run_id = ? AND task_id = ? AND attempt = ?"),
            select_last_log=q(
                f"SELECT {_LOG_COLS} FROM logs WHERE run_id = ? AND task_id = ? ORDER BY attempt DESC LIMIT 1"
            ),
            log_index=q(
                "SELECT task_id, attempt, size FROM logs WHERE run_id = ? ORDER BY first_ts, task_id, attempt"
            ),
            last_seq=q("SELECT MAX(seq) FROM events WHERE run_id = ?"),
            upsert_snapshot=q(
                "INSERT INTO snapshots (run_id, seq, data) VALUES (?, ?, ?) ON CONFLICT (run_id) "
                "DO UPDATE SET seq = excluded.seq, data = excluded.data WHERE snapshots.seq <= excluded.seq"
            ),
            select_snapshot=q("SELECT seq, data FROM snapshots WHERE run_id = ?"),
        )
