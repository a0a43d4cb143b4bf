# Django settings for the peerlite example shop: one SQLite file per node, named by the
# environment (SHOP_DB), as a deployment of the same app on several machines would have.
import os

SECRET_KEY = "peerlite-example-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# SHOP_BEGIN=immediate selects the backend in shop_backend/, which begins every
# transaction with BEGIN IMMEDIATE: what Django >= 5.1 spells
# OPTIONS = {"transaction_mode": "IMMEDIATE"} (docs/beside-your-app.md). The default is
# Django's own deferred BEGIN.
_immediate = os.environ.get("SHOP_BEGIN", "deferred") == "immediate"
DATABASES = {
    "default": {
        "ENGINE": "shop_backend" if _immediate else "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", "shop.db"),
        # Every writer of a shared SQLite file needs a busy timeout: seconds, as Django
        # passes it to sqlite3.connect().
        "OPTIONS": {"timeout": 5},
    }
}
