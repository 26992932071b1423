"""What a job directory (JOBDIR) must keep at once so that a killed run can be resumed.

Scrapy writes the spider state (``JOBDIR/spider.state``) only when the spider closes:
a process killed with ``kill -9`` leaves none, and its resumed run would start a new
run timestamp, so its documents would not replace the ones already written. The run
timestamp is therefore written to ``JOBDIR/run_timestamp`` (atomically, fsync'd) as
soon as the run has one, before any item exists. A directory that cannot be written
stops the crawl before any work is done, with the path and the reason.

Without JOBDIR nothing is kept (``-a run_timestamp=`` resumes by hand).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_NAME = "run_timestamp"


class JobDirError(RuntimeError):
    """The job directory cannot keep what a resume needs."""


class RunState:
    def __init__(self, jobdir: str | os.PathLike[str] | None):
        self.path = Path(jobdir) / FILE_NAME if jobdir else None
        self._found = self._read()
        self._written: str | None = self._found

    @property
    def resumed(self) -> bool:
        """True when the job directory held a run timestamp before this process began."""
        return self._found is not None

    def stored_timestamp(self) -> str | None:
        return self._found

    def _read(self) -> str | None:
        if self.path is None or not self.path.is_file():
            return None
        text = self.path.read_text(encoding="utf-8").strip()
        return text or None

    def keep_timestamp(self, timestamp: str) -> None:
        """Write ``timestamp`` to the job directory unless it is there already."""
        if self.path is None or self._written == timestamp:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".run_timestamp.")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(timestamp + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise JobDirError(
                f"cannot write the run timestamp to the job directory {self.path.parent} "
                f"({exc.strerror or exc}); a killed run could not be resumed. Give a writable JOBDIR."
            ) from None
        self._written = timestamp
