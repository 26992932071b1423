"""Running ckancrawl under scrapyd: deploy, schedule, watch.

- ``client``: a small scrapyd 1.6 client; scrapyd's ``"status": "error"`` answers (sent
  with HTTP 200) and 401s become exceptions with scrapyd's message.
- ``jobs``: what may be sent to scrapyd: job ids, project and spider names, spider
  arguments and per-job settings are checked before anything is sent.
- ``job_logs``: reads a finished job's outcome back from its log (the JobSummary line).
- ``schedule``: the weekly schedule (extensions Sunday 02:00 UTC, sites Sunday 03:00 UTC
  once extensions is done) and the idempotent ``tick`` that fires what is due.
- ``deploy``: builds the egg with scrapyd-deploy, checks it, deploys it (scripts/deploy).
- ``cli``: ``./scripts/schedule``.

How settings and secrets reach a job: scrapyd starts each job as a child process with a
copy of scrapyd's own environment (scrapyd.environ.Environment.get_environment), and
ckancrawl/settings.py and the components read their secrets (MONGODB_URI, CKAN_API_KEY,
GITHUB_TOKEN(S), JOB_SUMMARY_WEBHOOK_URL) from that environment. So secrets go into the
environment of the scrapyd service (for example a systemd ``EnvironmentFile=`` readable
by root only), never into the egg, and never into per-job ``setting=`` parameters, which
scrapyd shows in listjobs.json, in its log and on the job's command line. See
docs/scrapyd.md.
"""
