# Django's SQLite backend, with every transaction begun IMMEDIATE: the writer lock is taken
# at BEGIN, waiting in the busy handler if another connection holds it, instead of failing
# at the first write of a transaction that read first (docs/beside-your-app.md). Django
# 5.1 and later have this built in: OPTIONS = {"transaction_mode": "IMMEDIATE"}.
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self):
        self.cursor().execute("BEGIN IMMEDIATE")
