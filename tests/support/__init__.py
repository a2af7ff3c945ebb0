"""Helpers the tests share (not collected: nothing here is named ``test_*.py``).

``tests/`` is on ``sys.path`` while pytest runs (rootdir conftest), so tests import these as
``from support.transfer import Remote``.

- ``megafs``: the account and data of the mega:// filesystem tests;
- ``cli_inproc``: the command line run in the test process (``run_cli``, ``cli_login``);
- ``data``: generated plaintexts the known-answer vectors describe by formula;
- ``hostile``: a hostile MEGA server (cycles, collisions, odd sizes and names, endless or
  deeply nested bodies, redirect loops), separate from the emulator;
- ``raw_client``: a raw-JSON MEGA client that checks the emulator without megafast's client;
- ``scripted_api``: a scripted API server for transport and odd-answer tests;
- ``sync``: accounts, trees and listings for the sync tests;
- ``transfer``: the emulator account and URL getters of the transfer-engine tests.
"""
