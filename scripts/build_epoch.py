"""The one build time every release artefact uses, so two checkouts of one
commit write the same bytes: SOURCE_DATE_EPOCH when set, else the time of
HEAD's commit (0 outside a git checkout)."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_epoch():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        try:
            epoch = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%ct"], check=True,
                                   capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            epoch = "0"
    return int(epoch)
