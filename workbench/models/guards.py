"""Database triggers that refuse UPDATE and DELETE on history tables (PostgreSQL and SQLite).

The application already refuses (AppendOnlyQuerySet); these make the database refuse too, for a
shell, a script or a bug that goes round the ORM. The audit chain table allows exactly one UPDATE
per row: the sealer setting its chain columns once, content unchanged. `audit_verify` also checks
that the triggers are still there (an SQLite table rebuilt by a later migration loses them).
"""

HISTORY_TABLES = [
    "workbench_documentevent",
    "workbench_exceptionevent",
    "workbench_mappingruleversion",
    "workbench_fieldownership",
    "workbench_accrualjournalevent",
    "workbench_comment",
]
AUDIT_TABLE = "workbench_auditrecord"
CONTENT = ["id", "at", "source", "row_id", "action", "actor_id", "actor_name", "data", "row_hash"]

_PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION workbench_history_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION workbench_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
     AND ({", ".join("NEW." + c for c in CONTENT)}) IS NOT DISTINCT FROM ({", ".join("OLD." + c for c in CONTENT)})
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def trigger_names() -> list[str]:
    return [f"{t}_guard" for t in [*HISTORY_TABLES, AUDIT_TABLE]]


def install_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        sql = [_PG_FUNCTIONS]
        for table in HISTORY_TABLES:
            sql.append(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
            sql.append(
                f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION workbench_history_guard()"
            )
        sql.append(f"DROP TRIGGER IF EXISTS {AUDIT_TABLE}_guard ON {AUDIT_TABLE}")
        sql.append(
            f"CREATE TRIGGER {AUDIT_TABLE}_guard BEFORE UPDATE OR DELETE ON {AUDIT_TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION workbench_audit_guard()"
        )
        return sql
    if vendor == "sqlite":
        sql = []
        for table in HISTORY_TABLES:
            for op in ("UPDATE", "DELETE"):
                name = f"{table}_guard" if op == "UPDATE" else f"{table}_guard_delete"
                sql.append(f"DROP TRIGGER IF EXISTS {name}")
                sql.append(
                    f"CREATE TRIGGER {name} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
                )
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in CONTENT)
        sql += [
            f"DROP TRIGGER IF EXISTS {AUDIT_TABLE}_guard",
            f"CREATE TRIGGER {AUDIT_TABLE}_guard BEFORE UPDATE ON {AUDIT_TABLE} "
            f"WHEN NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{AUDIT_TABLE} is append-only: UPDATE refused'); END",
            f"DROP TRIGGER IF EXISTS {AUDIT_TABLE}_guard_delete",
            f"CREATE TRIGGER {AUDIT_TABLE}_guard_delete BEFORE DELETE ON {AUDIT_TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{AUDIT_TABLE} is append-only: DELETE refused'); END",
        ]
        return sql
    return []


def missing_guards(connection) -> list[str]:
    """Triggers that should be there and are not (empty on databases without triggers here)."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        elif connection.vendor == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            return []
        present = {row[0] for row in cur.fetchall()}
    return [name for name in trigger_names() if name not in present]


def install(connection) -> None:
    with connection.cursor() as cur:
        for statement in install_sql(connection.vendor):
            cur.execute(statement)
