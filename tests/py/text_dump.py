"""Reads a CSV or JSONL file (optionally .gz) with Python's own csv and json modules and
prints one JSON object per row: CSV cells as strings (empty cells as null), JSON values as
parsed. Checks the CSV header names the fields once. Usage: text_dump.py FILE"""

import csv
import gzip
import io
import json
import sys


def main(path):
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    out = sys.stdout
    if ".csv" in path:
        reader = csv.reader(text)
        header = next(reader)
        assert len(set(header)) == len(header), f"duplicate columns in {header}"
        for row in reader:
            assert len(row) == len(header), f"row has {len(row)} cells, header {len(header)}"
            out.write(json.dumps({k: (v if v != "" else None) for k, v in zip(header, row)}, ensure_ascii=False, sort_keys=True))
            out.write("\n")
    else:
        for line in text:
            out.write(json.dumps(json.loads(line), ensure_ascii=False, sort_keys=True))
            out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
