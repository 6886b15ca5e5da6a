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
tell.

The same rollback also put back the table's *stream* as copied: the records the failed
transaction had appended stayed on the stream object an open shard iterator reads (so a
poller saw changes that never happened), and the restored stream numbered its next
records with the sequence numbers of those phantoms (so a fact could count twice). Here a
table's backup shares its stream with the table, and a failed transaction takes back the
stream records it appended: iterators stay valid, and a stream shows what was committed,
as on DynamoDB. It also spares copying the whole stream on every transaction.

Usage: python moto_serialized.py [moto_server's arguments].
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.server import main

_DYNAMODB = threading.RLock()


def _shared_stream(self, memo):
    """A table's backup (moto deep-copies it) keeps the table's own stream."""
    return self


StreamShard.__deepcopy__ = _shared_stream

_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_taking_back_stream_records(self, transact_items):
    shards = [
        (table.stream_shard, len(table.stream_shard.items))
        for table in self.tables.values()
        if table.stream_shard is not None
    ]
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for shard, length in shards:
            del shard.items[length:]
        raise


DynamoDBBackend.transact_write_items = _transact_taking_back_stream_records


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
