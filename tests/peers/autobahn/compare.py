#!/usr/bin/env python3
"""Check an Autobahn|Testsuite fuzzingclient report against the committed expectations.

    python3 compare.py --report target/autobahn/report/index.json --expected expected.json
    python3 compare.py ... --write          # (re)write expected.json from this report

Fails (exit 1) when
  (a) any case has behavior or behaviorClose FAILED (also with --write: nothing is written), or
  (b) any case's behavior/behaviorClose differs from expected.json, a case is new, or a case
      of expected.json is missing from the report (missing ones are ignored with
      --allow-missing, for partial runs).
expected.json: {"1.1.1": {"behavior": "OK", "behaviorClose": "OK"}, ...}
"""

import argparse
import json
import os
import re
import sys

FIELDS = ("behavior", "behaviorClose")


def case_key(case_id):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.]", case_id)]


def load_report(path):
    with open(path) as f:
        index = json.load(f)
    if len(index) != 1:
        sys.exit(f"compare: expected exactly one agent in {path}, found {sorted(index)}")
    (agent, cases), = index.items()
    return agent, {cid: {k: res.get(k) for k in FIELDS} for cid, res in cases.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True, help="the report's index.json")
    ap.add_argument("--expected", required=True, help="expected.json")
    ap.add_argument("--write", action="store_true", help="write expected.json from the report")
    ap.add_argument("--allow-missing", action="store_true",
                    help="cases of expected.json absent from the report are not an error")
    a = ap.parse_args()

    agent, got = load_report(a.report)
    ids = sorted(got, key=case_key)
    counts = {}
    for cid in ids:
        for k in FIELDS:
            counts[(k, got[cid][k])] = counts.get((k, got[cid][k]), 0) + 1
    print(f"compare: {len(ids)} cases for agent {agent!r}: " +
          ", ".join(f"{k}={v}: {n}" for (k, v), n in sorted(counts.items())))

    failed = [cid for cid in ids if any(got[cid][k] == "FAILED" for k in FIELDS)]
    for cid in failed:
        print(f"compare: FAILED case {cid}: behavior={got[cid]['behavior']} "
              f"behaviorClose={got[cid]['behaviorClose']}")

    if a.write:
        if failed:
            print(f"compare: {len(failed)} FAILED cases; not writing {a.expected}")
            return 1
        with open(a.expected, "w") as f:  # one case per line: small, readable diffs
            f.write("{\n" + ",\n".join(f"  {json.dumps(cid)}: {json.dumps(got[cid])}"
                                        for cid in ids) + "\n}\n")
        print(f"compare: wrote {len(ids)} cases to {a.expected}")
        return 0

    if not os.path.exists(a.expected):
        print(f"compare: {a.expected} does not exist: no baseline to compare with; "
              f"create it from a good run with --write")
        return 1
    with open(a.expected) as f:
        want = json.load(f)

    diffs = []
    for cid in sorted(set(want) | set(got), key=case_key):
        if cid not in got:
            if not a.allow_missing:
                diffs.append(f"{cid}: expected {want[cid]}, missing from the report")
        elif cid not in want:
            diffs.append(f"{cid}: new case, got {got[cid]}, not in expected.json")
        elif any(want[cid].get(k) != got[cid][k] for k in FIELDS):
            diffs.append(f"{cid}: expected {want[cid]}, got {got[cid]}")
    for d in diffs:
        print(f"compare: DIFF {d}")

    ok = not failed and not diffs
    print(f"compare: {'ok' if ok else 'FAIL'}: {len(failed)} FAILED, {len(diffs)} differing "
          f"from expected.json")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
