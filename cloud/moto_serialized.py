"""moto_server with DynamoDB's writes serialized.

moto runs each request on its own thread. Its TransactWriteItems backs the whole table up
with a deep copy and, when a condition fails, puts the copy back: a write made by another
thread meanwhile (an item and its stream record) is lost. Real DynamoDB loses nothing, and
the app's conditional transactions fail by design (a repeated event), so the browser
suite on moto lost a client's creation now and then, and the Rust tests a dashboard
counter item's attributes. Taking one lock around every
DynamoDB write makes the rollback lose nothing. Usage: python moto_serialized.py
[moto_server's arguments].
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITES = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main(sys.argv[1:])
