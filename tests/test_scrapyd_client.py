"""The scrapyd client against a real scrapyd 1.6 with HTTP Basic auth."""
from __future__ import annotations

import pytest

from ckancrawl.scrapyd.client import ScrapydClient, ScrapydError, ScrapydUnauthorized, ScrapydUnavailable
from ckancrawl.scrapyd.jobs import InvalidJob, JobRequest
from tests.fixtures.mongo import free_port


def test_daemon_status_answers_with_the_right_login(scrapyd_server):
    with scrapyd_server.client() as client:
        status = client.daemon_status()
    assert {"pending", "running", "finished", "node_name"} <= set(status)


def test_a_missing_login_is_explained(scrapyd_server):
    client = ScrapydClient(scrapyd_server.url)
    with pytest.raises(ScrapydUnauthorized, match="requires a login: set SCRAPYD_USERNAME and SCRAPYD_PASSWORD"):
        client.daemon_status()
    client.close()


def test_a_wrong_password_is_refused_without_echoing_it(scrapyd_server):
    client = ScrapydClient(scrapyd_server.url, scrapyd_server.username, "not-the-password")
    with pytest.raises(ScrapydUnauthorized) as raised:
        client.list_projects()
    client.close()
    assert "not-the-password" not in str(raised.value) + repr(client)


def test_an_error_answered_with_http_200_raises_scrapyds_message(scrapyd_server):
    client = ScrapydClient(scrapyd_server.url, scrapyd_server.username, scrapyd_server.password, project="nothere")
    with pytest.raises(ScrapydError, match="listjobs.json: project 'nothere' not found"):
        client.list_jobs()
    client.close()


def test_scheduling_a_spider_the_egg_does_not_have_raises(scrapyd_server, deployed_version):
    with scrapyd_server.client() as client:
        with pytest.raises(ScrapydError, match="schedule.json: spider 'nosuchspider' not found"):
            # Built by hand: job_request() would refuse the name before sending it.
            client.schedule(JobRequest("ckancrawl", "nosuchspider"))


def test_an_upload_that_is_not_an_egg_is_refused(scrapyd_server):
    client = ScrapydClient(scrapyd_server.url, scrapyd_server.username, scrapyd_server.password, project="scratch")
    with pytest.raises(ScrapydError, match="addversion.json: egg is not a ZIP file"):
        client.add_version("1", b"this is not a zip file")
    client.close()


def test_unknown_jobs_have_no_state_and_cannot_be_cancelled(scrapyd_server, deployed_version):
    with scrapyd_server.client() as client:
        assert client.status("0123456789abcdef0123456789abcdef") is None
        assert client.cancel("0123456789abcdef0123456789abcdef") is None


def test_a_bad_job_id_is_refused_before_any_request():
    client = ScrapydClient(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    with pytest.raises(InvalidJob):
        client.cancel("../../dbs/ckancrawl")
    with pytest.raises(InvalidJob):
        client.status("x/../y")
    client.close()


def test_a_scrapyd_that_is_not_running_is_reported_as_such():
    client = ScrapydClient(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(ScrapydUnavailable, match="could not be reached \\(connection refused\\); is it running"):
        client.daemon_status()
    client.close()


def test_credentials_in_the_url_are_refused():
    with pytest.raises(ValueError, match="SCRAPYD_USERNAME and SCRAPYD_PASSWORD, not in the URL"):
        ScrapydClient("http://ops:secret@127.0.0.1:6800/")
