"""Loaded at start by a Daphne whose PYTHONPATH holds this folder: logs every write
statement the app sends to the database to BENCH_SQL_LOG (database-writes benchmark only)."""

import os
import time

from django.db.backends.signals import connection_created

WRITES = ("INSERT", "UPDATE", "DELETE")


def _log_writes(execute, sql, params, many, context):
    verb = sql.lstrip().split(None, 1)[0].upper()
    if verb in WRITES:
        table = sql.split('"')[1] if '"' in sql else "?"
        with open(os.environ["BENCH_SQL_LOG"], "a") as log:
            log.write(f"{time.time_ns()} {verb} {table}\n")
    return execute(sql, params, many, context)


def _install(sender, connection, **kwargs):
    if _log_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(_log_writes)


connection_created.connect(_install)
