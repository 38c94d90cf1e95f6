"""``idres mirror add|list|status|remove`` against a database, their refusals, and the settings of replication."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from registry.errors import ConfigurationError
from resolver.config import Settings
from tests.nodes import idres


async def run(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(idres, *args)


def output(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


async def test_a_mirror_is_added_listed_shown_and_removed(fresh_dsn, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    added = await run("mirror", "add", "--from", "http://127.0.0.1:9/", "--prefix", "88.101", "--user", "300:88.101/ADMIN",
                      "--password-file", str(secret), "--dsn", fresh_dsn, "--json")
    assert added.returncode == 0, added.stderr
    assert output(added) == {"prefix": "88.101", "origin": "http://127.0.0.1:9", "mirrored": True, "user": "300:88.101/ADMIN",
                             "trustRoot": False}
    again = await run("mirror", "add", "--from", "http://127.0.0.1:9", "--prefix", "88.101", "--dsn", fresh_dsn)
    assert again.returncode == 1 and "mirrored from http://127.0.0.1:9 already" in again.stderr
    listed = await run("mirror", "list", "--dsn", fresh_dsn)
    assert listed.stdout.strip() == "88.101 <- http://127.0.0.1:9 (new)"
    status = output(await run("mirror", "status", "88.101", "--dsn", fresh_dsn, "--json"))
    mirror = status["mirrors"][0]
    assert (mirror["state"], mirror["cursor"], mirror["records"], mirror["verification"]) == ("new", None, 0, None)
    assert "secret" not in json.dumps(status) and "s3cret" not in json.dumps(status)
    home = await run("prefix", "home", "88.101", "--dsn", fresh_dsn, "--keys-dir", str(tmp_path / "keys"))
    assert home.returncode == 4 and "mirrored here from http://127.0.0.1:9: run `idres mirror remove 88.101` first" in home.stderr
    removed = await run("mirror", "remove", "88.101", "--dsn", fresh_dsn)
    assert removed.returncode == 0 and "no longer mirrored" in removed.stdout
    gone = await run("mirror", "remove", "88.101", "--dsn", fresh_dsn)
    assert (gone.returncode, gone.stderr.strip()) == (1, "idres: prefix 88.101 is not mirrored here")
    assert (await run("mirror", "status", "88.101", "--dsn", fresh_dsn)).returncode == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "ftp://x"], "--from must be the base URL of a node"),
    (["--from", "http://10.0.0.1", "--user", "300:88.101/ADMIN", "--password-file", "{secret}"], "credentials go over HTTPS only"),
    (["--from", "https://10.0.0.1", "--user", "300:88.101/ADMIN"], "give --user and --password-file together"),
    (["--from", "https://10.0.0.1", "--user", "ADMIN", "--password-file", "{secret}"], "is not an identity of the form"),
    (["--from", "https://10.0.0.1", "--trust-root", "{secret}"], "is not a public key"),
    (["--from", "https://10.0.0.1", "--trust-root", "/no/such/file"], "cannot read the trust root /no/such/file"),
    (["--from", "https://10.0.0.1", "--ca-file", "{secret}"], "holds no PEM certificate"),
])
async def test_mirror_add_refuses_what_it_could_not_follow(fresh_dsn, tmp_path, args, message):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    result = await run("mirror", "add", "--prefix", "88.101", *[a.replace("{secret}", str(secret)) for a in args], "--dsn", fresh_dsn)
    assert result.returncode in (2, 4) and message in result.stderr, result.stderr
    assert (await run("mirror", "list", "--dsn", fresh_dsn)).stdout.strip() == "(no mirrors)"


def test_replication_settings_come_from_the_environment_and_are_checked():
    settings = Settings.load(env={"IDRES_SYNC_RETENTION": "3600", "IDRES_SYNC_IDENTITIES": "300:88/REPL, 301:88/REPL2",
                                  "IDRES_MIRROR_VERIFY": "Records", "IDRES_MIRROR_BATCH": "50"})
    replication = settings.replication
    assert (replication.sync_retention, replication.mirror_verify, replication.mirror_batch) == (3600, "records", 50)
    assert [str(r) for r in replication.sync_identity_refs] == ["300:88/REPL", "301:88/REPL2"]
    for env, message in (({"IDRES_MIRROR_VERIFY": "maybe"}, "mirror_verify must be sealed or records"),
                         ({"IDRES_SYNC_IDENTITIES": "nobody"}, "replication identity 'nobody'"),
                         ({"IDRES_MIRROR_WAIT": "90"}, "IDRES_MIRROR_WAIT must not be longer than IDRES_SYNC_MAX_WAIT"),
                         ({"IDRES_SYNC_RETENTION": "5"}, "sync_retention (IDRES_SYNC_RETENTION)")):
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            Settings.load(env=env)
