"""``scrapy crawl`` that ends with a non-zero exit status when the job was flagged.

Scrapy 2.19's ``crawl`` exits with 1 only when the crawl could not start; nothing else a
crawl does reaches the exit status (scrapy/scrapy#1241). This command is Scrapy's own,
plus one step: after the crawl, if the JobSummary extension
(ckancrawl/extensions/job_summary.py) flagged the run, the exit status is
JOB_SUMMARY_EXIT_CODE (3 by default). Cron, CI and scripts/crawl see it; under scrapyd
it appears in scrapyd's own log as ``Process died: exitstatus=3``.

Enabled by ``COMMANDS_MODULE = "ckancrawl.commands"`` in the project settings: a
project command with a built-in command's name replaces it.
"""
from __future__ import annotations

import argparse
from typing import Any

from scrapy.commands import crawl
from scrapy.crawler import Crawler

from ckancrawl.extensions.job_summary import JobSummary


class Command(crawl.Command):
    def _create_crawler(self, spidercls: Any) -> Crawler:
        crawler = super()._create_crawler(spidercls)
        self._crawlers.append(crawler)
        return crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        self._crawlers: list[Crawler] = []
        super().run(args, opts)
        if self.exitcode:
            return
        for crawler in self._crawlers:
            try:
                summary = crawler.get_extension(JobSummary)
            except RuntimeError:  # the crawl never got as far as its extensions
                continue
            if summary is not None and summary.exit_code:
                self.exitcode = summary.exit_code
