"""Antivirus on terminals (article 27: 定期对终端进行杀毒): running scans and the scan log they leave.

The status side (what is installed, running and how fresh its signatures are) is gathered by
``collect/antivirus.py`` and judged by ``checks/antivirus.py``; this package runs scans
(``scan``) and keeps the log of completed scans (``records``) that the status check reads.
"""
