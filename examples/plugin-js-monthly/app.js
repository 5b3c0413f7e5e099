// `monthly_activity`: per account and calendar month (UTC), how many transactions and how
// much was debited and credited. A ferry resource plugin in JavaScript, built into a
// WebAssembly component with componentize-js (`node build.mjs`) against ferry's WIT with
// the blob-free world appended (`../plugin-python-monthly/wit/computing.wit`). The same
// resource as the Python and Rust examples; it decodes row batches and writes Avro itself.

import { open } from "ferry:plugin/source@0.2.0";
import { emit } from "ferry:plugin/records@0.2.0";
import { log } from "ferry:plugin/log@0.2.0";
import { report } from "ferry:plugin/progress@0.2.0";

const COLUMNS = ["account_guid", "type", "amount", "transacted_at"];
const MONEY = '{"type":"bytes","logicalType":"decimal","precision":18,"scale":2}';
const SCHEMA =
  '{"type":"record","name":"monthly_activity","namespace":"ferry.resources",' +
  '"doc":"transactions, debits and credits per account and month (UTC)","fields":[' +
  '{"name":"account_guid","type":"string"},{"name":"month","type":"string"},' +
  '{"name":"transactions","type":"long"},' +
  `{"name":"debits","type":${MONEY}},{"name":"credits","type":${MONEY}}]}`;
const BATCH_BYTES = 64 * 1024;
const utf8 = new TextDecoder();
const encoder = new TextEncoder();

function badData(message) {
  // A thrown variant value is the export's `err` (jco/componentize-js convention).
  return { tag: "bad-data", val: message };
}

// --- the row batch: per cell a tag byte, then its payload (wit/ferry.wit, "Row batch")

function readLong(data, pos) {
  let shift = 0n;
  let value = 0n;
  for (;;) {
    const b = data[pos++];
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [(value >> 1n) ^ -(value & 1n), pos];
    shift += 7n;
  }
}

function readCell(data, pos) {
  const tag = data[pos++];
  if (tag === 0) return [null, pos];
  if (tag === 1) return readLong(data, pos);
  if (tag === 2) return [new DataView(data.buffer, data.byteOffset + pos, 8).getFloat64(0, true), pos + 8];
  const [n, at] = readLong(data, pos);
  const bytes = data.subarray(at, at + Number(n));
  return [tag === 3 ? utf8.decode(bytes) : bytes, at + Number(n)];
}

// --- Avro binary (the record batch: datums of the declared schema, concatenated)

class Out {
  constructor() {
    this.bytes = [];
  }
  long(v) {
    let z = (BigInt(v) << 1n) ^ (BigInt(v) >> 63n);
    while (z >= 0x80n) {
      this.bytes.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    this.bytes.push(Number(z));
  }
  raw(b) {
    this.long(b.length);
    for (const x of b) this.bytes.push(x);
  }
  string(s) {
    this.raw(encoder.encode(s));
  }
  decimal(unscaled) {
    // Big-endian two's complement in the fewest bytes.
    const b = [];
    let v = unscaled;
    do {
      b.unshift(Number(BigInt.asUintN(8, v)));
      v >>= 8n;
    } while (!((v === 0n && (b[0] & 0x80) === 0) || (v === -1n && (b[0] & 0x80) !== 0)));
    this.raw(b);
  }
}

function cents(value, where) {
  if (typeof value === "bigint") return value * 100n;
  const m = typeof value === "string" ? /^([+-]?)(\d*)(?:\.(\d{0,2}))?$/.exec(value) : null;
  if (!m || (m[2] === "" && !m[3])) throw badData(`${where}: ${JSON.stringify(value)} is not a decimal of at most 2 digits after the point`);
  const v = BigInt(m[2] || "0") * 100n + BigInt((m[3] || "").padEnd(2, "0"));
  return m[1] === "-" ? -v : v;
}

export function describe() {
  return {
    name: "monthly_activity",
    version: "0.1.0",
    description: "transactions, debits and credits per account and month (UTC)",
    schema: SCHEMA,
    tables: [{ table: "transactions", columns: COLUMNS }],
    windowColumn: "transacted_at",
    mainTable: "transactions",
    createdColumn: undefined,
    key: undefined,
    references: [],
    copied: [],
  };
}

function exportResource(request) {
  const totals = new Map();
  const cursor = open({ table: "transactions", columns: COLUMNS, range: request.window, orderBy: undefined });
  let n = 0;
  for (let batch = cursor.next(); batch !== undefined && batch !== null; batch = cursor.next()) {
    const data = batch.data;
    let pos = 0;
    for (let r = 0; r < batch.rows; r++) {
      const row = [];
      for (let c = 0; c < COLUMNS.length; c++) {
        const [cell, next] = readCell(data, pos);
        row.push(cell);
        pos = next;
      }
      n++;
      const [account, kind, amount, at] = row;
      if (typeof account !== "string" || typeof at !== "bigint") {
        throw badData(`table \`transactions\`, row ${n}: account_guid or transacted_at is not valid`);
      }
      const month = new Date(Number(at / 1000n)).toISOString().slice(0, 7);
      const key = `${account}\u0000${month}`;
      let t = totals.get(key);
      if (!t) totals.set(key, (t = [0, 0n, 0n]));
      t[0] += 1;
      const c = cents(amount, `table \`transactions\`, row ${n}, column \`amount\``);
      if (kind === "CREDIT") t[2] += c;
      else t[1] += c;
    }
  }
  // Sorted by account, then month: the same order as the Rust and Python twins.
  const keys = [...totals.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let out = new Out();
  let count = 0;
  let emitted = 0;
  for (const key of keys) {
    const [account, month] = key.split("\u0000");
    const [k, debits, credits] = totals.get(key);
    out.string(account);
    out.string(month);
    out.long(k);
    out.decimal(debits);
    out.decimal(credits);
    count++;
    if (out.bytes.length >= BATCH_BYTES) {
      emit(count, new Uint8Array(out.bytes));
      emitted += count;
      out = new Out();
      count = 0;
    }
  }
  if (count > 0) {
    emit(count, new Uint8Array(out.bytes));
    emitted += count;
  }
  report(BigInt(emitted), BigInt(emitted));
  log("info", `${emitted} account-months`);
  return { records: BigInt(emitted) };
}

export { exportResource as export };
