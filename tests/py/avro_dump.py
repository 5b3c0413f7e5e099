"""Decodes Avro container files with fastavro (a reader ferry did not write) and prints
one JSON object per record, values normalised so the tests can compare them:
timestamps as integer microseconds since the epoch, decimals as exact strings, bytes
as hex. Usage: avro_dump.py FILE.avro[.gz]"""

import base64
import datetime
import decimal
import gzip
import json
import sys

import fastavro

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def norm(v):
    if isinstance(v, datetime.datetime):
        delta = v - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def main(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        reader = fastavro.reader(f)
        out = sys.stdout
        for record in reader:
            out.write(json.dumps(norm(record), ensure_ascii=False, sort_keys=True))
            out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
