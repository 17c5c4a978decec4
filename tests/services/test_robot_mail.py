"""Robots' lib.sendEmail and lib.sendMicroshareEmail: sent once when the run ends well, never by a failed
run, checked before anything is sent."""

from __future__ import annotations

import mailbox

from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_robots import errors_of, made, records

SCRIPT = """
function main(text, auth) {
  var record = lib.parseMsg(text).objs[0];
  var seen = lib.readShareById(auth, record.recType, record.id);  // a replay: the script runs twice
  lib.sendEmail('ops@acme.com', 'a@acme.com, b@acme.com', 'Alert: ' + record.data.label, 'found ' + seen.objs.length);
  lib.sendMicroshareEmail(['c@acme.com'], 'Plain', {label: record.data.label});
  if (record.data.fail) throw new Error('no');
}"""


def sent(lake: Lake) -> list[mailbox.mboxMessage]:
    box = mailbox.mbox(lake.settings.mail_outbox)
    try:
        return list(box)
    finally:
        box.close()


def test_a_run_sends_its_mails_once(tenant: Tenant, lake: Lake) -> None:
    before = len(sent(lake))
    made(tenant, "io.lab.in", SCRIPT)
    tenant.post("io.lab.in", {"label": "hot"})
    assert Worker(lake).drain() == 1
    alert, plain = sent(lake)[before:]
    assert alert["To"] == "a@acme.com, b@acme.com"
    assert alert["Reply-To"] == "ops@acme.com"
    assert alert["Subject"] == "Alert: hot"
    assert alert.get_payload(decode=True).decode().strip() == "found 1"
    assert plain["To"] == "c@acme.com"
    assert plain["Reply-To"] is None
    assert plain.get_payload(decode=True).decode().strip() == '{"label":"hot"}'

    tenant.post("io.lab.in", {"label": "cold", "fail": True})
    assert Worker(lake).drain() == 1
    assert len(sent(lake)) == before + 2  # the failed run sent nothing


def test_bad_mails_throw_in_the_script(tenant: Tenant, lake: Lake) -> None:
    script = """
    function main(text, auth) {
      var out = [];
      var calls = [function () { lib.sendEmail('ops@acme.com', 'not an address', 's', 'b'); },
                   function () { lib.sendEmail('nobody', 'a@acme.com', 's', 'b'); },
                   function () { lib.sendMicroshareEmail('a@acme.com', 'two\\nlines', 'b'); },
                   function () { lib.sendMicroshareEmail([], 's', 'b'); }];
      for (var i = 0; i < calls.length; i++) { try { calls[i](); } catch (e) { out.push(e.message); } }
      for (var n = 0; n < 11; n++) { try { lib.sendMicroshareEmail('a@acme.com', 's' + n, 'b'); } catch (e) { out.push(e.message); } }
      lib.writeShare(auth, 'io.lab.bad', {out: out});
    }"""
    doc = made(tenant, "io.lab.in", script)
    before = len(sent(lake))
    tenant.post("io.lab.in", {"label": "x"})
    assert Worker(lake).drain() == 1
    assert errors_of(tenant, doc) == []
    (answer,) = records(tenant, "io.lab.bad")
    assert answer["data"]["out"] == [
        'lib.sendEmail: "not an address" is not an e-mail address',
        "lib.sendEmail: from must be an e-mail address",
        "lib.sendMicroshareEmail: subject must be one line of at most 255 characters",
        "lib.sendMicroshareEmail: give 1 to 10 recipients",
        "lib.sendMicroshareEmail: one run may send at most 10 mails",
    ]
    assert len(sent(lake)) == before + 10
