"""`monthly_activity`: per account and calendar month (UTC), how many transactions and
how much was debited and credited. A ferry resource plugin in Python, built into a
WebAssembly component with componentize-py (tests/py/componentize.txt pins it) against
ferry's WIT with this example's blob-free world appended (`wit/computing.wit`):

    mkdir -p build/wit && cat ../../wit/ferry.wit wit/computing.wit > build/wit/ferry.wit
    componentize-py -d build/wit -w computing-plugin componentize app -o build/monthly_activity.wasm

It reads rows (the WIT's row-batch encoding) and writes Avro records itself; the host
validates every record against the schema declared in `describe`.
"""

import datetime

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, progress, records, source, types

NAME = "monthly_activity"
VERSION = "0.1.0"
COLUMNS = ["account_guid", "type", "amount", "transacted_at"]
MONEY = '{"type":"bytes","logicalType":"decimal","precision":18,"scale":2}'
SCHEMA = (
    '{"type":"record","name":"monthly_activity","namespace":"ferry.resources",'
    '"doc":"transactions, debits and credits per account and month (UTC)","fields":['
    '{"name":"account_guid","type":"string"},{"name":"month","type":"string"},'
    '{"name":"transactions","type":"long"},'
    '{"name":"debits","type":' + MONEY + '},{"name":"credits","type":' + MONEY + "}]}"
)
BATCH_BYTES = 64 * 1024
EPOCH = datetime.datetime(1970, 1, 1)


def bad_data(message):
    return Err(types.Error_BadData(message))


# --- the row batch: per cell a tag byte, then its payload (wit/ferry.wit, "Row batch")


def read_long(data, pos):
    shift, value = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7


def read_cell(data, pos):
    tag = data[pos]
    pos += 1
    if tag == 0:
        return None, pos
    if tag == 1:
        return read_long(data, pos)
    if tag == 2:
        import struct

        return struct.unpack_from("<d", data, pos)[0], pos + 8
    n, pos = read_long(data, pos)
    raw = bytes(data[pos : pos + n])
    return (raw.decode("utf-8") if tag == 3 else raw), pos + n


def rows(request):
    with source.open(request) as cursor:
        while True:
            batch = cursor.next()
            if batch is None:
                return
            data, pos = batch.data, 0
            for _ in range(batch.rows):
                row = []
                for _ in request.columns:
                    cell, pos = read_cell(data, pos)
                    row.append(cell)
                yield row


# --- Avro binary (the record batch: datums of the declared schema, concatenated)


def write_long(out, v):
    z = (v << 1) ^ (v >> 63)
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def write_string(out, s):
    b = s.encode("utf-8")
    write_long(out, len(b))
    out += b


def write_decimal(out, unscaled):
    bits = (unscaled if unscaled >= 0 else ~unscaled).bit_length() + 1
    b = unscaled.to_bytes((bits + 7) // 8, "big", signed=True)
    write_long(out, len(b))
    out += b


def cents(text, where):
    """Exact cents of a decimal text ("-12.3") or an integer; never a float."""
    if isinstance(text, int):
        return text * 100
    if not isinstance(text, str):
        raise bad_data(f"{where}: {text!r} is not a decimal")
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    whole, _, frac = body.partition(".")
    if not (whole or frac) or not (whole + frac).isdigit() or len(frac) > 2:
        raise bad_data(f"{where}: {text!r} is not a decimal of at most 2 digits after the point")
    return sign * (int(whole or "0") * 100 + int(frac.ljust(2, "0") or "0"))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.ResourceInfo:
        return types.ResourceInfo(
            name=NAME,
            version=VERSION,
            description="transactions, debits and credits per account and month (UTC)",
            schema=SCHEMA,
            tables=[types.TableGrant(table="transactions", columns=COLUMNS)],
            window_column="transacted_at",
            main_table="transactions",
            created_column=None,
            key=None,
            references=[],
            copied=[],
        )

    def export(self, request: types.ExportRequest) -> types.ExportSummary:
        totals = {}
        read = source.TableRequest(table="transactions", columns=COLUMNS, range=request.window, order_by=None)
        for n, (account, kind, amount, at) in enumerate(rows(read), 1):
            if not isinstance(account, str) or not isinstance(at, int):
                raise bad_data(f"table `transactions`, row {n}: account_guid {account!r} or transacted_at {at!r} is not valid")
            month = (EPOCH + datetime.timedelta(microseconds=at)).strftime("%Y-%m")
            t = totals.setdefault((account, month), [0, 0, 0])
            t[0] += 1
            c = cents(amount, f"table `transactions`, row {n}, column `amount`")
            if kind == "CREDIT":
                t[2] += c
            else:
                t[1] += c
        out, count, emitted = bytearray(), 0, 0
        for (account, month), (n, debits, credits) in sorted(totals.items()):
            write_string(out, account)
            write_string(out, month)
            write_long(out, n)
            write_decimal(out, debits)
            write_decimal(out, credits)
            count += 1
            if len(out) >= BATCH_BYTES:
                records.emit(count, bytes(out))
                emitted, out, count = emitted + count, bytearray(), 0
        if count:
            records.emit(count, bytes(out))
            emitted += count
        progress.report(emitted, emitted)
        log.log(log.Level.INFO, f"{emitted} account-months")
        return types.ExportSummary(records=emitted)
