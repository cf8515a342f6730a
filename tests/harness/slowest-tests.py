#!/usr/bin/python3
"""Prints the slowest tests of a scripts/run-tests run from ctest's JUnit files
(--output-junit), slowest first, with each file's total. Usage: slowest-tests.py FILE...
Missing files (a stage that did not get that far) are skipped."""
import os
import sys
import xml.etree.ElementTree as ET

TOP = int(os.environ.get("BI_SLOWEST", "15"))


def main():
    rows, totals = [], []
    for path in sys.argv[1:]:
        if not os.path.exists(path):
            continue
        stage = os.path.splitext(os.path.basename(path))[0]
        total = 0.0
        for case in ET.parse(path).getroot().iter("testcase"):
            secs = float(case.get("time", "0"))
            total += secs
            status = case.get("status", "")
            if case.find("failure") is not None or case.find("error") is not None:
                status = "failed"
            elif case.find("skipped") is not None:
                status = "skipped"
            rows.append((secs, stage, case.get("name", "?"), status or "run"))
        totals.append((stage, total))
    rows.sort(reverse=True)
    print(f"== slowest tests (of {len(rows)})")
    print(f"{'seconds':>9}  {'stage':<6}  {'status':<8}  test")
    for secs, stage, name, status in rows[:TOP]:
        print(f"{secs:9.1f}  {stage:<6}  {status:<8}  {name}")
    for stage, total in totals:
        print(f"{'':>9}  {stage:<6}  sum of test times {total:.0f} s")


if __name__ == "__main__":
    main()
