"""`novamove doctor`: the drift failed or interrupted migrations leave behind, found through
the public APIs alone (issue 18).

    snapshot, stats = scan(cloud)                 # reads only (scan.py)
    findings = detect(snapshot, Options(older_than=3600))   # pure (detect.py)

findings.py names the drift classes and the Finding's stable keys; repairs come later.
"""

from novamove.engine.doctor.detect import detect
from novamove.engine.doctor.findings import CLASSES, DriftClass, Finding, safe_classes, unknown_classes
from novamove.engine.doctor.scan import ScanStats, scan
from novamove.engine.doctor.snapshot import DEFAULT_OLDER_THAN, Options, Snapshot

__all__ = ["CLASSES", "DEFAULT_OLDER_THAN", "DriftClass", "Finding", "Options", "ScanStats", "Snapshot",
           "detect", "safe_classes", "scan", "unknown_classes"]
