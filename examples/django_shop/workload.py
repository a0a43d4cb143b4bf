"""Drives the example shop through Django's ORM, as a web app's requests would, and reports
what happened as one line of JSON.

    SHOP_DB=node.db python3 workload.py seed N        # N operations of every kind
    SHOP_DB=node.db python3 workload.py stock N       # N F() increments of the seeded stock

`seed` makes the products `stock` works on (named "stable-..."), then runs N random
operations: create, update, F() increments, update_or_create, delete, bulk_create,
bulk_update and nested atomic blocks, on products of its own. `stock` only adds to the
stable products' stock with F() increments, so the totals it reports are what every node
must show once the mesh has converged, whatever the other nodes added at the same time.
Every "database is locked" is counted, never retried: it is what an app's user would see.
"""
import json
import os
import random
import sys
import time
import uuid

import django

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
django.setup()

from django.db import OperationalError, transaction  # noqa: E402
from django.db.models import F  # noqa: E402

from shop.models import Note, Product  # noqa: E402

STABLE = 5


def random_op(rng, tag, mine):
    """One ORM operation on this run's own products (ids in `mine`)."""
    kind = rng.choice(["create", "update", "increment", "update_or_create", "delete",
                       "bulk_create", "bulk_update", "nested"])
    if kind == "create" or not mine:
        p = Product.objects.create(name=f"{tag}-{rng.randrange(10**6)}", price=rng.randrange(999))
        mine.append(p.id)
    elif kind == "update":
        with transaction.atomic():  # read, then write: the case deferred BEGIN gets wrong
            p = Product.objects.get(id=rng.choice(mine))
            p.price = rng.randrange(999)
            p.save()
    elif kind == "increment":
        Product.objects.filter(id=rng.choice(mine)).update(stock=F("stock") + rng.randrange(1, 5))
    elif kind == "update_or_create":
        Product.objects.update_or_create(id=rng.choice(mine),
                                         defaults={"name": f"{tag}-{rng.randrange(10**6)}"})
    elif kind == "delete":
        victim = mine.pop(rng.randrange(len(mine)))
        Product.objects.filter(id=victim).delete()
    elif kind == "bulk_create":
        made = Product.objects.bulk_create(
            [Product(name=f"{tag}-bulk-{i}", price=i) for i in range(rng.randrange(2, 6))])
        mine.extend(p.id for p in made)
        Note.objects.bulk_create([Note(product=p.id, text="bulk") for p in made])
    elif kind == "bulk_update":
        some = list(Product.objects.filter(id__in=rng.sample(mine, min(3, len(mine)))))
        for p in some:
            p.price += 1
        Product.objects.bulk_update(some, ["price"])
    else:  # nested atomic blocks: the inner one rolled back to its savepoint
        with transaction.atomic():
            p = Product.objects.create(name=f"{tag}-outer")
            mine.append(p.id)
            try:
                with transaction.atomic():
                    Note.objects.create(product=p.id, text="rolled back")
                    raise RuntimeError("undo the inner block")
            except RuntimeError:
                pass
            Note.objects.create(product=p.id, text="kept")


def main():
    mode, count = sys.argv[1], int(sys.argv[2])
    tag = os.path.basename(os.environ.get("SHOP_DB", "shop"))
    rng = random.Random(int(os.environ.get("SHOP_SEED", "1")))
    report = {"ops": 0, "locked": 0, "locked_at": [], "errors": [], "increments": {}}
    started = time.monotonic()

    def attempt(op):
        try:
            op()
            report["ops"] += 1
            return True
        except OperationalError as e:
            if "database is locked" in str(e):
                report["locked"] += 1
                # When, in seconds from the start: a clue to what else wrote the file.
                report["locked_at"].append(round(time.monotonic() - started, 3))
            else:
                report["errors"].append(str(e))
            return False

    if mode == "seed":
        for i in range(STABLE):
            attempt(lambda: Product.objects.create(id=uuid.UUID(int=i + 1), name=f"stable-{i}",
                                                   stock=100))
        mine = []
        for _ in range(count):
            attempt(lambda: random_op(rng, tag, mine))
    else:
        stable = [uuid.UUID(int=i + 1) for i in range(STABLE)]
        for _ in range(count):
            pid, n = rng.choice(stable), rng.randrange(1, 10)

            def add():
                with transaction.atomic():  # read, then write
                    Product.objects.get(id=pid)
                    Product.objects.filter(id=pid).update(stock=F("stock") + n)

            if attempt(add):
                report["increments"][pid.hex] = report["increments"].get(pid.hex, 0) + n
    print(json.dumps(report))


if __name__ == "__main__":
    main()
