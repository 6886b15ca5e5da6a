"""moto_server with DynamoDB's requests serialized.

moto runs each request on its own thread, and its DynamoDB models are not thread-safe.
Its TransactWriteItems backs the whole table up with a deep copy and, when a condition
fails, puts the copy back: a write made by another thread meanwhile (an item and its
stream record) is lost. Real DynamoDB loses nothing, and the app's conditional
transactions fail by design (a repeated event), so the browser suite on moto lost a
client's creation now and then, and the Rust tests a dashboard counter item's
attributes. Reads that run while a write or a rollback changes the table (or its stream)
can see it half-changed. Taking one lock around every DynamoDB and DynamoDB Streams call
the app makes turns moto's DynamoDB into one request at a time, as far as the app can
tell. Usage: python moto_serialized.py [moto_server's arguments].
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.server import main

_DYNAMODB = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _DYNAMODB:
            return method(*args, **kwargs)

    return locked


for _backend, _names in (
    (
        DynamoDBBackend,
        (
            "put_item",
            "update_item",
            "delete_item",
            "transact_write_items",
            "batch_write_item",
            "get_item",
            "query",
            "scan",
            "batch_get_item",
            "transact_get_items",
            "describe_table",
        ),
    ),
    (
        DynamoDBStreamsBackend,
        ("describe_stream", "list_streams", "get_shard_iterator", "get_records"),
    ),
):
    for _name in _names:
        setattr(_backend, _name, _serialized(getattr(_backend, _name)))

if __name__ == "__main__":
    main(sys.argv[1:])
