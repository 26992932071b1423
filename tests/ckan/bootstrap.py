"""One-time set-up of the test catalog's CKAN; runs inside the CKAN virtualenv.

    python bootstrap.py config INI PERMISSIONS_SQL KEY=VALUE...
        Generate INI if it does not exist (new secrets), then write the settings into
        [app:main], and write the datastore permissions SQL to PERMISSIONS_SQL.
    python bootstrap.py setup INI ADMIN ORG
        Migrate the empty database (core and plugins), create the sysadmin ADMIN with an
        API token and the organization ORG; print a line "BOOTSTRAP-RESULT {"token", "admin", "org", "org_id"}".

One process does what `ckan generate config`, `ckan config-tool`, `ckan db upgrade`,
`ckan datastore set-permissions`, `ckan user add`, `ckan sysadmin add` and
`ckan user token add` would do in seven, each of which loads CKAN again. The helpers it
borrows from ckan.cli are CKAN 2.11's (the version is pinned in scripts/lib/ckan.sh).
"""
from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlsplit


def configure(ini: str, permissions_sql: str, settings: list[str]) -> None:
    from ckan.cli.generate import make_config
    from ckan.lib.config_tool import config_edit_using_option_strings

    if not os.path.exists(ini):
        make_config.callback(ini, [])
    config_edit_using_option_strings(ini, settings, "app:main", edit=False)

    from ckanext.datastore.cli import permissions_sql as make_permissions_sql
    values = dict(setting.split("=", 1) for setting in settings)

    def database_and_user(url: str) -> tuple[str, str]:
        parts = urlsplit(url.strip())
        return parts.path.lstrip("/"), parts.username or ""

    main_db, main_user = database_and_user(values["sqlalchemy.url"])
    store_db, write_user = database_and_user(values["ckan.datastore.write_url"])
    _, read_user = database_and_user(values["ckan.datastore.read_url"])
    sql = make_permissions_sql(maindb=main_db, datastoredb=store_db, mainuser=main_user,
                               writeuser=write_user, readuser=read_user)
    with open(permissions_sql, "w") as handle:
        handle.write(sql)


def setup(ini: str, admin: str, org: str) -> dict[str, str]:
    from ckan.cli import CKANConfigLoader
    from ckan.config.middleware import make_app

    app = make_app(CKANConfigLoader(ini).get_config())
    flask_app = app._wsgi_app

    from ckan import logic, model
    from ckan.cli.db import _migrate_plugins, _run_migrations

    _run_migrations(None)  # core
    _migrate_plugins(apply=True)  # activity, datastore, ...

    with flask_app.test_request_context():
        site_user = logic.get_action("get_site_user")({"ignore_auth": True}, {})
        context = {"ignore_auth": True, "user": site_user["name"]}
        logic.get_action("user_create")(context, {
            "name": admin, "email": f"{admin}@example.org", "password": "Test-catalog-pass-1234"})
        user = model.User.get(admin)
        user.sysadmin = True
        model.repo.commit()
        token = logic.get_action("api_token_create")(
            {"ignore_auth": True, "user": admin}, {"user": admin, "name": "ckancrawl-tests"})["token"]
        organization = logic.get_action("organization_create")(
            {"ignore_auth": True, "user": admin},
            {"name": org, "title": "ckancrawl test organization"})
    return {"token": token, "admin": admin, "org": org, "org_id": organization["id"]}


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "config":
        configure(args[0], args[1], args[2:])
    elif command == "setup":
        # CKAN prints progress on stdout too: the result is the line with this prefix.
        print("BOOTSTRAP-RESULT " + json.dumps(setup(*args)))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
