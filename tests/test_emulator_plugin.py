"""The opt-in pytest plugin: a fresh emulator per test, with $MEGAFAST_API_URL pointing at it."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_plugin_fixture_starts_an_emulator_and_sets_the_api_url(pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["megafast.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        """
        import os, requests

        def test_one(mega_emulator):
            assert os.environ["MEGAFAST_API_URL"] == mega_emulator.api_url
            mega_emulator.create_account("p@example.com", "pw")
            r = requests.post(mega_emulator.api_url + "/cs?id=1", data='[{"a":"us0","user":"p@example.com"}]')
            assert r.json()[0]["v"] == 2

        def test_two_is_fresh(mega_emulator):
            r = requests.post(mega_emulator.api_url + "/cs?id=1", data='[{"a":"us0","user":"p@example.com"}]')
            assert r.json() == [-9]
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)
