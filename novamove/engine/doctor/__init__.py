"""`novamove doctor`: the drift failed or interrupted migrations leave behind, found through
the public APIs alone (issue 18).

    snapshot, stats = scan(cloud)                 # reads only (scan.py)
    findings = detect(snapshot, Options(older_than=3600))   # pure (detect.py)

findings.py names the drift classes and the Finding's stable keys; repair.py makes the
repairs (`--fix`); run.py is one whole `novamove doctor` (scan, judge, repair in a RunFrame,
scan again).
"""

from novamove.engine.doctor.detect import detect
from novamove.engine.doctor.findings import CLASSES, DriftClass, Finding, safe_classes, unknown_classes
from novamove.engine.doctor.scan import ScanStats, scan
from novamove.engine.doctor.snapshot import DEFAULT_OLDER_THAN, Options, Snapshot
from novamove.engine.doctor.repair import REPAIRABLE, Repair
from novamove.engine.doctor.run import DoctorReport, doctor

__all__ = ["CLASSES", "DEFAULT_OLDER_THAN", "DoctorReport", "DriftClass", "Finding", "Options", "REPAIRABLE",
           "Repair", "ScanStats", "Snapshot", "detect", "doctor", "safe_classes", "scan", "unknown_classes"]
