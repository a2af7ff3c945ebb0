"""Random JSON shapes for every command the client parses, through a scripted server over
real HTTP: whatever comes back, a call returns or raises a megafast error, nothing else
(no KeyError, TypeError, RecursionError, OverflowError ...)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from megafast import Mega
from megafast._account.session import Credentials
from megafast._wire.codec import b64encode
from megafast.errors import MegaError
from support.scripted_api import ScriptedAPI
from support.servers import FUZZ_SETTINGS, scripted_per_module  # noqa: F401 (a fixture)
from test_client_odd_answers import MASTER, USER, tree_answer

KEYS = [
    "f", "ok", "s", "h", "p", "t", "a", "k", "u", "g", "at", "e", "tl", "sk", "ph", "csid",
    "tsid", "privk", "v", "email", "mstrg", "cstrg", "cstrgn", "mxfer", "caxfer", "balance",
    "fh", "uh", "n", "ts", "su", "r", "fa", "ip", "msg", "pubk",
]  # fmt: skip
HANDLES = ["ROOT0000", "TRASH000", "FOLDER01", "FILE0001", "AAAAAAAA", USER, ""]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, 3, 4, -1, -3, -9, -11, -17, 10**20])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(HANDLES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=20,
)
odd_nodes = st.fixed_dictionaries(
    {},
    optional={
        "h": st.sampled_from(HANDLES) | json_values,
        "p": st.sampled_from(HANDLES) | json_values,
        "t": st.integers(-1, 5) | json_values,
        "s": st.sampled_from([10**20, "12", [1], -5, 2**53]) | json_values,
        "a": json_values,
        "k": st.sampled_from([f"{USER}:", f"{USER}:AAAA", "x:y/z"]) | json_values,
        "u": st.sampled_from([USER]) | json_values,
        "sk": json_values,
    },
)


@st.composite
def listings(draw: st.DrawFn) -> Any:
    """An ``f`` answer: the real tree with odd nodes among its nodes, or odd fields."""
    answer = tree_answer()
    nodes = answer["f"] + draw(st.lists(odd_nodes, max_size=5))
    answer["f"] = draw(st.permutations(nodes))
    for key in draw(st.lists(st.sampled_from(["ok", "s", "f", "sn"]), max_size=2)):
        answer[key] = draw(json_values)
    return answer


LINK = "https://mega.nz/file/AAAAAAAA#" + b64encode(bytes(32))
FOLDER_LINK = "https://mega.nz/folder/AAAAAAAA#" + b64encode(bytes(16))

# (command whose answer is random, call); the other commands get ordinary answers
CALLS: list[tuple[str, Callable[[Mega, Path], Any]]] = [
    ("us0", lambda m, d: Mega(api_url=m.api_url, retry_time=0.2).login("a@b.example", "pw")),
    ("us", lambda m, d: Mega(api_url=m.api_url, retry_time=0.2).login("a@b.example", "pw")),
    ("ug", lambda m, d: m.get_user()),
    ("f", lambda m, d: m.get_files()),
    ("f", lambda m, d: m.find("docs/a.txt", exclude_deleted=True)),
    ("f", lambda m, d: m.get_files_in_node("FOLDER01")),
    ("f", lambda m, d: m.download(m.find("docs"), d)),
    ("uq", lambda m, d: m.get_quota()),
    ("uq", lambda m, d: m.get_storage_space()),
    ("uq", lambda m, d: m.get_balance()),
    ("p", lambda m, d: m.create_folder("new")),
    ("l", lambda m, d: m.export("docs/a.txt")),
    ("s2", lambda m, d: m.export("docs")),
    ("uk", lambda m, d: m.share("docs", "friend@example.com")),
    ("g", lambda m, d: m.get_public_url_info(LINK)),
    ("g", lambda m, d: m.download(m.find("docs/a.txt"), d)),
    ("g", lambda m, d: m.download_url(LINK, d)),
    ("f", lambda m, d: m.get_public_folder(FOLDER_LINK)),
    ("f", lambda m, d: m.get_public_url_info(FOLDER_LINK)),
    ("f", lambda m, d: m.download_folder_url(FOLDER_LINK, d)),
    ("u", lambda m, d: m.upload(d / "src.bin")),
]


def answers(odd_for: str, odd: Any, whole: bool) -> Callable[[dict[str, Any]], Any]:
    tree = tree_answer()

    def answer(record: dict[str, Any]) -> Any:
        batch = json.loads(record["body"])
        if whole and any(c.get("a") == odd_for for c in batch):
            return (200, {}, json.dumps(odd))  # the answer to the whole batch
        out: list[Any] = []
        for cmd in batch:
            name = cmd.get("a")
            if name == odd_for:
                out.append(odd)
            elif name == "us0":
                out.append({"v": 1})
            elif name == "ug":
                out.append({"u": USER, "email": "x@example.com"})
            elif name == "f":
                out.append(tree)
            else:
                out.append(-9)
        return (200, {}, json.dumps(out))

    return answer


@pytest.mark.parametrize(
    ("command", "call"), CALLS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CALLS)]
)
@FUZZ_SETTINGS
@given(data=st.data())
def test_random_answers_raise_only_megafast_errors(
    scripted: ScriptedAPI, command: str, call: Callable[[Mega, Path], Any], data: st.DataObject
) -> None:
    odd = data.draw(listings() if command == "f" else json_values, label="answer")
    whole = data.draw(st.booleans(), label="whole batch")
    scripted.default = answers(command, odd, whole)
    m = Mega(api_url=scripted.url, retry_time=0.2, timeout=5)
    creds = Credentials(sid="S" * 58, master_key=MASTER, user_handle=USER)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "src.bin").write_bytes(b"0123456789")
        with contextlib.suppress(MegaError):
            m.resume_session(creds.to_dict())  # asks ug: its answer may be the odd one
            call(m, Path(tmp))


@pytest.mark.parametrize("made", [True, 5, "x", {"h": "AAAAAAAA"}, [True]])
def test_a_p_answer_whose_nodes_are_no_list_is_an_unexpected_answer(
    scripted: ScriptedAPI, made: Any
) -> None:
    # the fuzz case that once reached a TypeError: {"f": True} for a new folder
    from megafast.errors import UnexpectedAnswerError

    scripted.default = answers("p", {"f": made}, False)
    m = Mega(api_url=scripted.url, retry_time=0.2, timeout=5)
    m.resume_session(Credentials(sid="S" * 58, master_key=MASTER, user_handle=USER).to_dict())
    with pytest.raises(UnexpectedAnswerError):
        m.create_folder("new")
