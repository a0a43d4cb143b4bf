# The example's models. Keys are UUIDs, so rows created on different nodes never collide
# (README, "Choosing keys"); `stock` is a counter in peerlite.toml, so F() increments made
# on several nodes at once all count; `name` and `price` are last-writer-wins.
import uuid

from django.db import models


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)  # cents
    stock = models.IntegerField(default=0)


class Note(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.UUIDField()  # no ForeignKey: a note may arrive before its product
    text = models.CharField(max_length=200)
